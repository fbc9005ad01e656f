"""Assemble a job's result file from its stored row blocks and chunk results.

Results are kept per distinct number, rows per block, so writing joins the
two. The join maps each number to the id of one of the few distinct results
in a ``NumberTable``, about 20 MB for a million numbers. Row blocks are
fetched a few at a time on the event loop while the writer runs in a worker
thread.

Writing a large file is CPU-bound Python, so two processes share it: a
helper process (spawned per export) writes the second half of the rows to
spool files while this process writes the first, and this process joins the
halves. Each process builds its own result index from the database.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.batch.intake import StoredRow, chunk_number_keys, decode_lists
from phonestatus.batch.models import BatchChunk, BatchJob, BatchRowBlock, ChunkState
from phonestatus.batch.numbertable import NumberTable
from phonestatus.batch.results import NumberResult, ResultRow, decode_chunk_results
from phonestatus.batch.writers import (
    OutputFormat,
    OutputLayout,
    OutputSummary,
    PartOutput,
    append_csv_part,
    assemble_xlsx,
    csv_rows_part,
    write_csv,
    write_xlsx,
    xlsx_rows_part,
)
from phonestatus.batch.xlsx import Segment
from phonestatus.storage import create_engine, create_session_factory

log = structlog.get_logger(__name__)

CHUNKS_PER_FETCH = 10
BLOCKS_PER_FETCH = 50
# Below this many rows a second process costs more than it saves: starting its
# interpreter alone took about 0.5 s on the 2-core bench machine.
SPLIT_MIN_ROWS = 100_000

R = TypeVar("R")


class ResultIndex:
    """Answered numbers of one job and their results, looked up by number."""

    def __init__(self, expected_numbers: int = 0) -> None:
        # Sized up front, the table never grows, so memory never has two copies of it at once.
        self._table = NumberTable(NumberTable.capacity_for(expected_numbers))
        self._results: list[NumberResult] = []
        self._ids: dict[NumberResult, int] = {}

    def add_chunk(self, numbers: str, stored_results: Any) -> None:
        """Add a stored chunk: its numbers text and its results as stored."""
        distinct, positions = decode_chunk_results(stored_results)
        result_ids = [self._result_id(result) for result in distinct]
        keys = chunk_number_keys(numbers)
        if len(keys) != len(positions):
            raise ValueError(f"chunk has {len(keys)} numbers but {len(positions)} results")
        self._table.add_many(keys, list(map(result_ids.__getitem__, positions)))

    def _result_id(self, result: NumberResult) -> int:
        """Return the index's id of ``result``, registering it on first sight."""
        result_id = self._ids.get(result)
        if result_id is None:
            result_id = len(self._results)
            self._ids[result] = result_id
            self._results.append(result)
        return result_id

    def get(self, number: str) -> NumberResult | None:
        result_id = self._table.get(int(number))
        return None if result_id is None else self._results[result_id]

    def __len__(self) -> int:
        return len(self._table)


async def load_result_index(
    session_factory: async_sessionmaker[AsyncSession], job_id: str, *, expected_numbers: int = 0
) -> ResultIndex:
    index = ResultIndex(expected_numbers)
    last_chunk = -1
    while True:
        async with session_factory() as session:
            rows = (
                await session.execute(
                    select(BatchChunk.chunk_no, BatchChunk.numbers, BatchChunk.results)
                    .where(
                        BatchChunk.job_id == job_id,
                        BatchChunk.chunk_no > last_chunk,
                        BatchChunk.state == ChunkState.DONE.value,
                    )
                    .order_by(BatchChunk.chunk_no)
                    .limit(CHUNKS_PER_FETCH)
                )
            ).all()
        if not rows:
            return index
        for chunk_no, numbers, results in rows:
            last_chunk = chunk_no
            index.add_chunk(numbers, results)


def result_row(stored: StoredRow, index: ResultIndex) -> ResultRow:
    result = index.get(stored.number) if stored.number is not None else None
    return ResultRow(
        row_number=stored.row_number,
        cells=stored.cells,
        number=stored.number,
        result=result,
        duplicate=stored.duplicate,
        reason_code=stored.reason_code,
        reason_zh=stored.reason_zh,
    )


@dataclass(frozen=True)
class ExportPart:
    """Rows of blocks [first_block, end_block) of a job, starting at data row ``first_data_row``."""

    job_id: str
    first_block: int
    end_block: int
    first_data_row: int
    expected_numbers: int
    layout: OutputLayout
    output_format: OutputFormat
    path: Path  # the CSV file, or the directory for XLSX spool files


async def export_job(
    session_factory: async_sessionmaker[AsyncSession],
    job: BatchJob,
    path: Path,
    output_format: OutputFormat,
    *,
    sheet_per_status: bool = False,
    database_url: str | None = None,
    split_min_rows: int = SPLIT_MIN_ROWS,
) -> OutputSummary:
    """Write the job's result file to ``path``; rows with no result yet read NOT_QUERIED.

    With ``database_url`` (the URL ``session_factory`` uses), a job of at
    least ``split_min_rows`` rows is written by two processes: a helper
    process writes the second half of the rows while this one writes the
    first, and this process joins them. If the helper fails, this process
    writes its half too.
    """
    layout = OutputLayout(
        source_header=tuple(job.source_header) if job.source_header else None,
        source_width=job.source_width,
    )
    facts = [
        ("任务 Job", job.id),
        ("文件 File", job.source_name),
        ("状态 State", job.state),
        ("查询号码数 Numbers queried", job.queried_numbers),
        ("计费号码数 Billable numbers", job.billable_numbers),
    ]
    whole = ExportPart(
        job_id=job.id,
        first_block=0,
        end_block=job.block_count,
        first_data_row=0,
        expected_numbers=job.distinct_numbers,
        layout=layout,
        output_format=output_format,
        path=path,
    )
    if (
        database_url is None
        or sheet_per_status
        or job.total_rows < split_min_rows
        or job.block_count < 2
    ):
        index = await load_result_index(
            session_factory, job.id, expected_numbers=job.distinct_numbers
        )
        if output_format is OutputFormat.CSV:
            return await _write_part(
                session_factory, index, whole, lambda rows: write_csv(path, layout, rows)
            )

        def write_workbook(rows: Iterable[ResultRow]) -> OutputSummary:
            return write_xlsx(
                path, layout, rows, job_facts=facts, sheet_per_status=sheet_per_status
            )

        return await _write_part(session_factory, index, whole, write_workbook)

    with tempfile.TemporaryDirectory(prefix="export-", dir=path.parent) as directory:
        first, second = await _split(session_factory, whole, Path(directory))
        parts = await _write_two_parts(session_factory, database_url, first, second)
        if output_format is OutputFormat.CSV:
            summary = parts[0].summary
            summary.add_counts(parts[1].summary)
            await asyncio.to_thread(append_csv_part, path, parts[1])
            return summary
        return await asyncio.to_thread(assemble_xlsx, path, layout, parts, job_facts=facts)


async def _split(
    session_factory: async_sessionmaker[AsyncSession], whole: ExportPart, directory: Path
) -> tuple[ExportPart, ExportPart]:
    """Cut ``whole`` at its middle block into a first part and a second part."""
    middle = whole.end_block // 2
    async with session_factory() as session:
        rows_before = await session.scalar(
            select(func.coalesce(func.sum(BatchRowBlock.row_count), 0)).where(
                BatchRowBlock.job_id == whole.job_id, BatchRowBlock.block_no < middle
            )
        )
    # For CSV the first part writes the result file itself, header included.
    first = replace(
        whole,
        end_block=middle,
        path=whole.path if whole.output_format is OutputFormat.CSV else directory,
    )
    second = replace(
        whole,
        first_block=middle,
        first_data_row=int(rows_before or 0),
        path=directory / "second.csv" if whole.output_format is OutputFormat.CSV else directory,
    )
    return first, second


async def _write_two_parts(
    session_factory: async_sessionmaker[AsyncSession],
    database_url: str,
    first: ExportPart,
    second: ExportPart,
) -> list[PartOutput]:
    helper = asyncio.create_task(_write_part_in_helper(database_url, second))
    try:
        index = await load_result_index(
            session_factory, first.job_id, expected_numbers=first.expected_numbers
        )
        local = await _write_part_output(session_factory, index, first)
        try:
            remote = await helper
        except (ExportHelperError, OSError) as exc:
            log.warning("batch_export_helper_failed", job_id=first.job_id, error=str(exc))
            remote = await _write_part_output(session_factory, index, second)
    finally:
        if not helper.done():
            # This half failed or was cancelled: stop the helper before its files go.
            helper.cancel()
            await asyncio.wait([helper])
    return [local, remote]


class ExportHelperError(RuntimeError):
    """The helper process failed; its half is written in this process instead."""


async def _write_part_in_helper(database_url: str, part: ExportPart) -> PartOutput:
    # A fresh interpreter, as for the writer process: multiprocessing's spawn would
    # import the caller's __main__ module again in the child.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from phonestatus.batch.export import serve_part; serve_part()",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        # The URL goes through the pipe, not the command line, which other users can read.
        request = pickle.dumps((database_url, part), protocol=pickle.HIGHEST_PROTOCOL)
        reply, _ = await process.communicate(request)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise ExportHelperError(f"export helper process exited with code {process.returncode}")
    try:
        output: PartOutput = pickle.loads(reply)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ExportHelperError(f"export helper process sent no result: {exc}") from exc
    return output


def serve_part() -> None:
    """Run the helper process: read (database URL, part) from stdin, write the pickled output."""
    # The result gets the real stdout; anything else printed goes to stderr.
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    database_url, part = pickle.load(sys.stdin.buffer)
    output = asyncio.run(_write_part_alone(database_url, part))
    with reply:
        pickle.dump(output, reply, protocol=pickle.HIGHEST_PROTOCOL)


async def _write_part_alone(database_url: str, part: ExportPart) -> PartOutput:
    engine = create_engine(database_url)
    try:
        session_factory = create_session_factory(engine)
        index = await load_result_index(
            session_factory, part.job_id, expected_numbers=part.expected_numbers
        )
        return await _write_part_output(session_factory, index, part)
    finally:
        await engine.dispose()


async def _write_part_output(
    session_factory: async_sessionmaker[AsyncSession], index: ResultIndex, part: ExportPart
) -> PartOutput:
    if part.output_format is OutputFormat.XLSX:

        def write_sheet_rows(rows: Iterable[ResultRow]) -> PartOutput:
            return xlsx_rows_part(
                part.path,
                part.layout,
                rows,
                first_data_row=part.first_data_row,
                name=f"rows-{part.first_block}",
            )

        return await _write_part(session_factory, index, part, write_sheet_rows)
    if part.first_block == 0:

        def write_file(rows: Iterable[ResultRow]) -> PartOutput:
            summary = write_csv(part.path, part.layout, rows)
            return PartOutput(summary, [(0, Segment(part.path, summary.rows))])

        return await _write_part(session_factory, index, part, write_file)
    return await _write_part(
        session_factory, index, part, lambda rows: csv_rows_part(part.path, part.layout, rows)
    )


async def _write_part(
    session_factory: async_sessionmaker[AsyncSession],
    index: ResultIndex,
    part: ExportPart,
    write: Callable[[Iterable[ResultRow]], R],
) -> R:
    """Run ``write`` over the part's result rows in a thread, fetching blocks on this loop."""
    loop = asyncio.get_running_loop()

    def fetch(first_block: int) -> list[bytes]:
        future = asyncio.run_coroutine_threadsafe(
            _fetch_blocks(session_factory, part.job_id, first_block, part.end_block), loop
        )
        return future.result()

    def rows() -> Iterator[ResultRow]:
        find = index.get
        for first_block in range(part.first_block, part.end_block, BLOCKS_PER_FETCH):
            for payload in fetch(first_block):
                # The stored lists go straight into result rows: no StoredRow per row.
                for row_number, cells, number, duplicate, reason_code, reason_zh in decode_lists(
                    payload
                ):
                    yield ResultRow(
                        row_number,
                        tuple(cells),
                        number,
                        None if number is None else find(number),
                        bool(duplicate),
                        reason_code,
                        reason_zh,
                    )

    return await asyncio.to_thread(write, rows())


async def _fetch_blocks(
    session_factory: async_sessionmaker[AsyncSession], job_id: str, first_block: int, end_block: int
) -> list[bytes]:
    async with session_factory() as session:
        payloads = await session.scalars(
            select(BatchRowBlock.payload)
            .where(
                BatchRowBlock.job_id == job_id,
                BatchRowBlock.block_no >= first_block,
                BatchRowBlock.block_no < min(first_block + BLOCKS_PER_FETCH, end_block),
            )
            .order_by(BatchRowBlock.block_no)
        )
        return list(payloads)
