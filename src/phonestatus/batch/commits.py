"""Committing a queried chunk: its results, billing and counters in one transaction.

``ChunkCommitter`` is the synchronous core that every path shares.
PostgreSQL workers run it inside the claim's transaction. SQLite workers run
it in a thread (``ThreadCommits``) or in a writer process (``ProcessCommits``).

Why a process: on SQLite a worker's querying and its commits are both Python
and share one interpreter lock, so in a thread they take turns on one core.
A writer process commits chunk N on another core while the worker queries
chunk N+1. Exactly-once billing still rests on the chunk guard: a commit
lands whole or not at all, and a writer that dies takes its open transaction
with it, so the chunk stays pending and is queried again.

The writer process is started with ``subprocess`` and talks over two pipes of
its own (pickled requests and replies), so it imports only this module's
dependencies, not whatever started the worker. The database URL goes through
the pipe, never the command line, which other users of the machine can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import structlog
from sqlalchemy import case, exists, func, literal, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from phonestatus.batch.models import (
    CLAIMABLE_STATES,
    BatchChunk,
    BatchJob,
    BatchJobCount,
    ChunkState,
    JobState,
)
from phonestatus.batch.results import NumberResult
from phonestatus.billing.batching import meter_queries
from phonestatus.billing.metering import QueryUsage
from phonestatus.billing.prices import PriceList
from phonestatus.logs import mask_number
from phonestatus.storage.db import SQLITE_BEGIN_OPTION

log = structlog.get_logger(__name__)

# How long closing waits for the writer process to finish its last commit.
WRITER_STOP_SECONDS = 30.0
# An idle writer exits after this long without a commit, so an idle server does
# not keep its memory (about 120 MB with a full page cache); the next commit
# starts it again in well under a second.
WRITER_IDLE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ChunkCommit:
    """A queried chunk, ready to commit: the lists run in the order of its numbers."""

    job_id: str
    chunk_no: int
    account_id: str
    action: str
    numbers: list[str]
    row_numbers: list[int]
    answers: list[NumberResult]
    connectors: list[str | None]
    latencies: list[int | None]
    now: datetime  # aware UTC: the time of the chunk's records and usage events


class CommitWriterError(RuntimeError):
    """The writer process failed a commit or exited; the chunk stays pending."""


class ChunkCommitter:
    """Store a chunk's results, mark it done and bill each number, in the caller's transaction."""

    def __init__(self, *, prices: PriceList, worker_id: str, is_postgresql: bool) -> None:
        self._prices = prices
        self._worker_id = worker_id
        self._is_postgresql = is_postgresql

    def persist(self, session: Session, commit: ChunkCommit) -> bool:
        """Persist ``commit``; False (and nothing written) if the chunk was already done."""
        # One stored list per distinct answer; the JSON encoder writes each as often as used.
        lists = {id(answer): answer.to_list() for answer in set(commit.answers)}
        stored = [lists[id(answer)] for answer in commit.answers]
        done = session.execute(
            update(BatchChunk)
            .where(
                BatchChunk.job_id == commit.job_id,
                BatchChunk.chunk_no == commit.chunk_no,
                BatchChunk.state == ChunkState.PENDING.value,
            )
            .values(
                state=ChunkState.DONE.value,
                results=stored,
                completed_by=self._worker_id[:64],
                completed_at=commit.now,
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            # Nothing was written in this transaction, so committing it is harmless.
            log.info("batch_chunk_already_done", job_id=commit.job_id, chunk_no=commit.chunk_no)
            return False

        self._bill(session, commit)

        counts: Counter[str] = Counter()
        billable = 0
        for answer in commit.answers:
            billable += answer.billable
            counts[f"status:{answer.outcome}"] += 1
            if answer.carrier is not None:
                counts[f"carrier:{answer.carrier}"] += 1

        session.execute(
            update(BatchJob)
            .where(BatchJob.id == commit.job_id)
            .values(
                queried_numbers=BatchJob.queried_numbers + len(commit.answers),
                billable_numbers=BatchJob.billable_numbers + billable,
                state=_running_state(),
                started_at=_coalesce_started(commit.now),
            )
            .execution_options(synchronize_session=False)
        )
        self._add_counts(session, commit.job_id, counts)
        return True

    def persist_and_complete(self, session: Session, commit: ChunkCommit) -> bool:
        """Persist the chunk and complete its job if no chunk is left; return whether it did.

        Only for SQLite, where this transaction holds the only write lock, so
        every other chunk's commit came before it.
        """
        if not self.persist(session, commit):
            return False
        completed = session.execute(complete_statement(commit.job_id, commit.now))
        return bool(completed.rowcount == 1)  # type: ignore[attr-defined]

    def _bill(self, session: Session, commit: ChunkCommit) -> None:
        # One meter_queries call meters the whole chunk in a few statements.
        request_prefix = f"{commit.job_id}:"
        usages = [
            QueryUsage(
                account_id=commit.account_id,
                action=commit.action,
                request_id=f"{request_prefix}{row_number}",
                code=answer.code,
                status=answer.status,
                billable=answer.billable,
                masked_number=mask_number(number),
                carrier=answer.carrier,
                connector=connector,
                latency_ms=latency_ms,
                source="batch",
                occurred_at=commit.now,
            )
            for number, row_number, answer, connector, latency_ms in zip(
                commit.numbers,
                commit.row_numbers,
                commit.answers,
                commit.connectors,
                commit.latencies,
                strict=True,
            )
        ]
        record_ids = meter_queries(session, usages, prices=self._prices)
        for usage, record_id in zip(usages, record_ids, strict=True):
            if record_id is None:
                # Unreachable while the chunk guard holds; meter_queries never
                # charges a request id twice.
                log.error("batch_row_already_recorded", request_id=usage.request_id)

    def _add_counts(self, session: Session, job_id: str, counts: Counter[str]) -> None:
        if not counts:
            return
        rows = [{"job_id": job_id, "key": key, "count": count} for key, count in counts.items()]
        insert_statement: Any = (
            postgresql.insert(BatchJobCount)
            if self._is_postgresql
            else sqlite.insert(BatchJobCount)
        )
        statement = insert_statement.on_conflict_do_update(
            index_elements=["job_id", "key"],
            set_={"count": BatchJobCount.count + insert_statement.excluded.count},
        )
        session.execute(statement, rows)


def commit_blocking(engine: Engine, committer: ChunkCommitter, commit: ChunkCommit) -> bool:
    """Run ``persist_and_complete`` in its own SQLite transaction; return whether the job completed."""
    with Session(engine) as session:
        # BEGIN IMMEDIATE takes SQLite's write lock before the first statement.
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        completed = committer.persist_and_complete(session, commit)
        session.commit()
    return completed


class ThreadCommits:
    """SQLite commits in a thread on a blocking engine, one chunk at a time."""

    # Querying the next chunk while a thread commits this one only adds lock contention.
    pipelined = False

    def __init__(self, engine: Engine, committer: ChunkCommitter) -> None:
        self._engine = engine
        self._committer = committer

    async def commit(self, commit: ChunkCommit) -> bool:
        return await asyncio.to_thread(commit_blocking, self._engine, self._committer, commit)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """What the writer process needs; sent through its pipe, never on the command line."""

    database_url: str
    standard_price_li: int
    price_overrides_li: dict[str, int]
    worker_id: str
    log_level: int
    json_logs: bool


class ProcessCommits:
    """SQLite commits in a writer process, so the worker queries the next chunk meanwhile.

    The process starts on the first commit, and again after it exits or was
    stopped for idleness (``idle_seconds`` without a commit). One commit is
    in flight at a time; ``commit`` raises ``CommitWriterError`` when the
    writer reports a failure or dies, and the chunk stays pending.
    """

    pipelined = True

    def __init__(self, config: WriterConfig, *, idle_seconds: float = WRITER_IDLE_SECONDS) -> None:
        self._config = config
        self._idle_seconds = idle_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: IO[bytes] | None = None
        self._replies: IO[bytes] | None = None
        self._lock = asyncio.Lock()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_stops: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        return self._process.pid if self._process is not None else None

    async def commit(self, commit: ChunkCommit) -> bool:
        async with self._lock:
            self._cancel_idle_timer()
            try:
                return await asyncio.to_thread(self._round_trip, commit)
            finally:
                self._idle_timer = asyncio.get_running_loop().call_later(
                    self._idle_seconds, self._stop_when_idle
                )

    async def aclose(self) -> None:
        self._cancel_idle_timer()
        async with self._lock:
            await asyncio.to_thread(self._stop)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _stop_when_idle(self) -> None:
        self._idle_timer = None
        task = asyncio.get_running_loop().create_task(self._stop_idle())
        self._idle_stops.add(task)
        task.add_done_callback(self._idle_stops.discard)

    async def _stop_idle(self) -> None:
        async with self._lock:
            # A commit that came meanwhile set a new timer; only a still idle writer stops.
            if self._idle_timer is None and self._process is not None:
                await asyncio.to_thread(self._stop)
                log.info("batch_commit_writer_stopped_idle")

    def _round_trip(self, commit: ChunkCommit) -> bool:
        self._start_if_needed()
        assert self._requests is not None and self._replies is not None
        try:
            pickle.dump(commit, self._requests, protocol=pickle.HIGHEST_PROTOCOL)
            self._requests.flush()
            ok, value = pickle.load(self._replies)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            code = self._stop()
            raise CommitWriterError(f"the batch commit process exited (code {code})") from exc
        if not ok:
            raise CommitWriterError(f"the batch commit process failed the commit: {value}")
        return bool(value)

    def _start_if_needed(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._stop()
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        command = [
            sys.executable,
            "-c",
            "import sys; from phonestatus.batch.commits import serve_commits; "
            "serve_commits(int(sys.argv[1]), int(sys.argv[2]))",
            str(request_read),
            str(reply_write),
        ]
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._requests = os.fdopen(request_write, "wb")
        self._replies = os.fdopen(reply_read, "rb")
        pickle.dump(self._config, self._requests, protocol=pickle.HIGHEST_PROTOCOL)
        self._requests.flush()
        log.info("batch_commit_writer_started", pid=self._process.pid)

    def _stop(self) -> int | None:
        """Close the pipes and wait for the writer; return its exit code."""
        for stream in (self._requests, self._replies):
            if stream is not None:
                # A broken pipe to a dead writer: nothing is left to flush.
                with contextlib.suppress(OSError):
                    stream.close()
        self._requests = self._replies = None
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            # Closing the request pipe ends the writer's loop after its current commit.
            return process.wait(timeout=WRITER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def serve_commits(request_fd: int, reply_fd: int) -> None:
    """The writer process: commit each chunk read from ``request_fd`` until the pipe closes."""
    from phonestatus.logs import configure_logging
    from phonestatus.storage.db import create_sync_engine

    requests = os.fdopen(request_fd, "rb")
    replies = os.fdopen(reply_fd, "wb")
    config: WriterConfig = pickle.load(requests)
    configure_logging(config.log_level, json=config.json_logs)
    engine = create_sync_engine(config.database_url)
    if engine is None:
        raise SystemExit("the batch commit process serves SQLite databases only")
    committer = ChunkCommitter(
        prices=PriceList(
            standard_li=config.standard_price_li, overrides_li=config.price_overrides_li
        ),
        worker_id=config.worker_id,
        is_postgresql=False,
    )
    try:
        while True:
            try:
                commit: ChunkCommit = pickle.load(requests)
            except EOFError:
                break  # the worker closed the pipe or exited
            try:
                reply: tuple[bool, object] = (True, commit_blocking(engine, committer, commit))
            except Exception as exc:
                # The transaction rolled back; the worker sees the error and retries later.
                log.exception("batch_commit_failed", job_id=commit.job_id, chunk_no=commit.chunk_no)
                reply = (False, f"{type(exc).__name__}: {exc}")
            try:
                pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
                replies.flush()
            except BrokenPipeError:
                break
    finally:
        engine.dispose()


def pending_chunks(job_id: str) -> Any:
    return exists().where(BatchChunk.job_id == job_id, BatchChunk.state == ChunkState.PENDING.value)


def complete_statement(job_id: str, now: datetime) -> Any:
    """Return the UPDATE that completes a claimable job with no pending chunk left."""
    return (
        update(BatchJob)
        .where(
            BatchJob.id == job_id,
            BatchJob.state.in_(CLAIMABLE_STATES),
            ~pending_chunks(job_id),
        )
        .values(state=JobState.COMPLETED.value, finished_at=now, state_reason=None)
        .execution_options(synchronize_session=False)
    )


def _running_state() -> Any:
    return case(
        (BatchJob.state == JobState.QUEUED.value, JobState.RUNNING.value),
        else_=BatchJob.state,
    )


def _coalesce_started(now: datetime) -> Any:
    # The literal carries the column type so SQLite stores it in the same UTC form.
    return func.coalesce(BatchJob.started_at, literal(now, BatchJob.__table__.c.started_at.type))
