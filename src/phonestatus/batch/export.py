"""Assemble a job's result file from its stored row blocks and chunk results.

Results are kept per distinct number, rows per block, so writing joins the
two. The join maps each number to the id of one of the few distinct results
in a ``NumberTable``, about 20 MB for a million numbers. Row blocks are fetched a few at a time on the event loop while the
writer runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.batch.intake import StoredRow, chunk_number_keys, decode_lists
from phonestatus.batch.models import BatchChunk, BatchJob, BatchRowBlock, ChunkState
from phonestatus.batch.numbertable import NumberTable
from phonestatus.batch.results import NumberResult, ResultRow
from phonestatus.batch.writers import (
    OutputFormat,
    OutputLayout,
    OutputSummary,
    write_csv,
    write_xlsx,
)

CHUNKS_PER_FETCH = 10
BLOCKS_PER_FETCH = 50


class ResultIndex:
    """Answered numbers of one job and their results, looked up by number."""

    def __init__(self, expected_numbers: int = 0) -> None:
        # Sized up front, the table never grows, so memory never has two copies of it at once.
        self._table = NumberTable(NumberTable.capacity_for(expected_numbers))
        self._results: list[NumberResult] = []
        self._ids: dict[NumberResult, int] = {}

    def add(self, number: str, result: NumberResult) -> None:
        result_id = self._ids.get(result)
        if result_id is None:
            result_id = len(self._results)
            self._ids[result] = result_id
            self._results.append(result)
        self._table.add(int(number), result_id)

    def add_chunk(self, numbers: str, results: list[list[Any]]) -> None:
        """Add a stored chunk: its numbers text and its ``NumberResult.to_list`` values."""
        ids_by_values: dict[tuple[Any, ...], int] = {}
        add = self._table.add
        for key, values in zip(chunk_number_keys(numbers), results, strict=True):
            # A chunk has only a few distinct results, so each is parsed once.
            stored = tuple(values)
            result_id = ids_by_values.get(stored)
            if result_id is None:
                result = NumberResult.from_list(values)
                result_id = self._ids.get(result)
                if result_id is None:
                    result_id = len(self._results)
                    self._ids[result] = result_id
                    self._results.append(result)
                ids_by_values[stored] = result_id
            add(key, result_id)

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


async def export_job(
    session_factory: async_sessionmaker[AsyncSession],
    job: BatchJob,
    path: Path,
    output_format: OutputFormat,
    *,
    sheet_per_status: bool = False,
) -> OutputSummary:
    """Write the job's result file to ``path``; rows not yet answered read NOT_QUERIED."""
    index = await load_result_index(session_factory, job.id, expected_numbers=job.distinct_numbers)
    loop = asyncio.get_running_loop()
    layout = OutputLayout(
        source_header=tuple(job.source_header) if job.source_header else None,
        source_width=job.source_width,
    )

    def fetch(first_block: int) -> list[bytes]:
        future = asyncio.run_coroutine_threadsafe(
            _fetch_blocks(session_factory, job.id, first_block), loop
        )
        return future.result()

    def rows() -> Iterator[ResultRow]:
        find = index.get
        for first_block in range(0, job.block_count, BLOCKS_PER_FETCH):
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

    if output_format is OutputFormat.CSV:
        return await asyncio.to_thread(write_csv, path, layout, rows())
    facts = [
        ("任务 Job", job.id),
        ("文件 File", job.source_name),
        ("状态 State", job.state),
        ("查询号码数 Numbers queried", job.queried_numbers),
        ("计费号码数 Billable numbers", job.billable_numbers),
    ]
    return await asyncio.to_thread(
        lambda: write_xlsx(path, layout, rows(), job_facts=facts, sheet_per_status=sheet_per_status)
    )


async def _fetch_blocks(
    session_factory: async_sessionmaker[AsyncSession], job_id: str, first_block: int
) -> list[bytes]:
    async with session_factory() as session:
        payloads = await session.scalars(
            select(BatchRowBlock.payload)
            .where(
                BatchRowBlock.job_id == job_id,
                BatchRowBlock.block_no >= first_block,
                BatchRowBlock.block_no < first_block + BLOCKS_PER_FETCH,
            )
            .order_by(BatchRowBlock.block_no)
        )
        return list(payloads)
