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

The writer process is ``storage.writer.WriterProcess``, which the gateway's
query recorder uses too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from phonestatus.batch.results import NumberResult, encode_chunk_results
from phonestatus.billing.batching import meter_queries
from phonestatus.billing.metering import QueryUsage
from phonestatus.billing.prices import PriceList
from phonestatus.logs import mask_number
from phonestatus.storage.writer import WriterProcess, run_request

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ChunkCommit:
    """A queried chunk, ready to commit: the lists run in the order of its numbers."""

    job_id: str
    chunk_no: int
    account_id: str
    action: str
    numbers: list[str]
    row_numbers: list[int]
    results: list[NumberResult]
    connectors: list[str | None]
    latencies: list[int | None]
    now: datetime  # aware UTC: the time of the chunk's records and usage events
    claimed_at: datetime | None = None  # aware UTC: when querying began; the job's start


class ChunkCommitter:
    """Store a chunk's results, mark it done and bill each number, in the caller's transaction."""

    def __init__(self, *, prices: PriceList, worker_id: str, is_postgresql: bool) -> None:
        self._prices = prices
        self._worker_id = worker_id
        self._is_postgresql = is_postgresql

    def persist(self, session: Session, commit: ChunkCommit) -> bool:
        """Persist ``commit`` and return True, or False (writing nothing) if it was already done."""
        done = session.execute(
            update(BatchChunk)
            .where(
                BatchChunk.job_id == commit.job_id,
                BatchChunk.chunk_no == commit.chunk_no,
                BatchChunk.state == ChunkState.PENDING.value,
            )
            .values(
                state=ChunkState.DONE.value,
                results=encode_chunk_results(commit.results),
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

        # Workers share one result object among the numbers that got that result,
        # so the counts are taken per distinct object.
        distinct = {id(result): result for result in commit.results}
        counts: Counter[str] = Counter()
        billable = 0
        for key, used in Counter(map(id, commit.results)).items():
            result = distinct[key]
            billable += result.billable * used
            counts[f"status:{result.outcome}"] += used
            if result.carrier is not None:
                counts[f"carrier:{result.carrier}"] += used

        session.execute(
            update(BatchJob)
            .where(BatchJob.id == commit.job_id)
            .values(
                queried_numbers=BatchJob.queried_numbers + len(commit.results),
                billable_numbers=BatchJob.billable_numbers + billable,
                state=_running_state(),
                started_at=_coalesce_started(commit.claimed_at or commit.now),
            )
            .execution_options(synchronize_session=False)
        )
        self._add_counts(session, commit.job_id, counts)
        return True

    def persist_and_complete(self, session: Session, commit: ChunkCommit) -> bool:
        """Persist the chunk, complete its job if no chunk is left, and return whether it did.

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
        account_id, action, now = commit.account_id, commit.action, commit.now
        # Positional, in field order: keyword arguments cost three times as much,
        # about 0.4 s per million numbers.
        usages = [
            QueryUsage(
                account_id,
                action,
                f"{request_prefix}{row_number}",  # request_id
                result.code,
                result.status,
                result.billable,
                mask_number(number),
                result.carrier,
                connector,
                latency_ms,
                "batch",  # source
                now,
            )
            for number, row_number, result, connector, latency_ms in zip(
                commit.numbers,
                commit.row_numbers,
                commit.results,
                commit.connectors,
                commit.latencies,
                strict=True,
            )
        ]
        record_ids = meter_queries(session, usages, prices=self._prices)
        for usage, record_id in zip(usages, record_ids, strict=True):
            if record_id is None:
                # Cannot happen while the chunk guard works, because meter_queries
                # never charges a request id twice.
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


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    """A chunk's commit as a ``storage.writer`` request, with what the writer needs."""

    commit: ChunkCommit
    prices: PriceList
    worker_id: str

    def apply(self, session: Session) -> bool:
        """Persist the chunk, complete its job if no chunk is left, and return whether it did."""
        committer = ChunkCommitter(
            prices=self.prices, worker_id=self.worker_id, is_postgresql=False
        )
        return committer.persist_and_complete(session, self.commit)


class ThreadCommits:
    """SQLite commits in a thread on a blocking engine, one chunk at a time."""

    # Querying the next chunk while a thread commits this one only adds lock contention.
    pipelined = False

    def __init__(self, engine: Engine, *, prices: PriceList, worker_id: str) -> None:
        self._engine = engine
        self._prices = prices
        self._worker_id = worker_id

    async def commit(self, commit: ChunkCommit) -> bool:
        request = ChunkRequest(commit, self._prices, self._worker_id)
        return bool(await asyncio.to_thread(self._run, request))

    def _run(self, request: ChunkRequest) -> bool:
        with Session(self._engine) as session:
            return bool(run_request(session, request))

    async def aclose(self) -> None:
        return None


class ProcessCommits:
    """SQLite commits in a writer process, so the worker queries the next chunk meanwhile.

    ``commit`` raises ``WriterProcessError`` when the writer fails the commit
    or dies; the chunk then stays pending.
    """

    pipelined = True

    def __init__(self, writer: WriterProcess, *, prices: PriceList, worker_id: str) -> None:
        self._writer = writer
        self._prices = prices
        self._worker_id = worker_id

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        return self._writer.pid

    async def commit(self, commit: ChunkCommit) -> bool:
        request = ChunkRequest(commit, self._prices, self._worker_id)
        return bool(await self._writer.call(request))

    async def aclose(self) -> None:
        await self._writer.aclose()


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
