"""The batch worker: claim a chunk, query its numbers, commit results and billing together.

Exactly-once billing rests on one transaction per chunk: the chunk's results,
its state change from pending to done, one ``meter_queries`` call for its numbers and
the job's counters commit together or not at all. The state change is a
guarded ``UPDATE ... WHERE state = 'pending'``, so a chunk that another
worker finished first is rolled back without billing. A worker killed at any
point leaves its chunk pending and the next worker queries it again.

Claiming differs by database:

- PostgreSQL: the claim is ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the
  chunk's transaction, so several processes share one job without ever
  querying the same chunk twice.
- SQLite: one writer at a time, so the chunk is read, queried outside any
  transaction and then committed in a short write transaction. The guard
  above protects billing if a second process runs anyway. Given a blocking
  engine (``create_sync_engine``), that transaction runs whole in a worker
  thread, because through aiosqlite every statement waits for a turn of the
  event loop. The same transaction completes the job when no chunk is left
  pending, because with one writer at a time every other chunk's commit
  came before it.

A chunk's numbers go to ``QueryEngine.query_many`` in slices, each slice
taken from the account's rate limit first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import case, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from phonestatus.accounts.models import Account
from phonestatus.batch.intake import ChunkNumber, decode_chunk_numbers
from phonestatus.batch.models import (
    CLAIMABLE_STATES,
    BatchChunk,
    BatchJob,
    BatchJobCount,
    ChunkState,
    JobState,
)
from phonestatus.batch.results import NumberResult
from phonestatus.batch.webhooks import WebhookSender
from phonestatus.billing import (
    BlockReason,
    PriceList,
    QueryUsage,
    account_block_reason,
)
from phonestatus.billing.batching import meter_queries
from phonestatus.clock import Clock
from phonestatus.detection import ProbeSubject, QueryEngine, QueryResult, Scene
from phonestatus.logs import mask_number
from phonestatus.ratelimit import AccountRateLimiter
from phonestatus.storage.db import SQLITE_BEGIN_OPTION

log = structlog.get_logger(__name__)

# How long the worker waits before asking the account limiter again.
THROTTLE_WAIT_SECONDS = 0.01
# Most numbers taken from the account's rate limit before they are queried together.
QUERY_SLICE = 256


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    job_id: str
    chunk_no: int
    account_id: str
    scene: Scene
    action: str
    rate_limit: str
    numbers: list[ChunkNumber]


class BatchWorker:
    """Processes pending chunks of queued and running jobs, oldest job first."""

    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        engine: QueryEngine,
        prices: PriceList,
        clock: Clock,
        rate_limiter: AccountRateLimiter | None,
        default_rate_limit: str,
        concurrency: int = 64,
        poll_seconds: float = 1.0,
        webhooks: WebhookSender | None = None,
        worker_id: str | None = None,
        parallel_chunks: int = 1,
        sync_engine: Engine | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._engine = engine
        self._prices = prices
        self._clock = clock
        self._rate_limiter = rate_limiter
        self._default_rate_limit = default_rate_limit
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._webhooks = webhooks
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        bind = session_factory.kw.get("bind")
        self._is_postgresql = bind is not None and bind.dialect.name == "postgresql"
        # SQLite has one writer, so chunks in parallel would only wait for each other.
        self._lanes = max(1, parallel_chunks) if self._is_postgresql else 1
        # Only SQLite gets a blocking engine; PostgreSQL commits through the async session.
        self._sync_engine = None if self._is_postgresql else sync_engine

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; when idle, deliver webhooks and poll again."""
        log.info("batch_worker_started", worker_id=self.worker_id)
        try:
            while not stop.is_set():
                try:
                    busy = any(await asyncio.gather(*(self.run_once() for _ in range(self._lanes))))
                    if not busy and self._webhooks is not None:
                        await self._webhooks.deliver_due()
                except Exception:
                    # The chunk's transaction rolled back, so nothing is half-billed;
                    # wait a poll interval so a persistent error does not spin.
                    log.exception("batch_worker_error", worker_id=self.worker_id)
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self._poll_seconds)
        finally:
            log.info("batch_worker_stopped", worker_id=self.worker_id)

    async def run_until_idle(self, job_id: str | None = None) -> None:
        """Process chunks until none is claimable (of ``job_id`` when given)."""

        async def lane() -> None:
            while await self.run_once(job_id):
                pass

        await asyncio.gather(*(lane() for _ in range(self._lanes)))
        if self._webhooks is not None:
            await self._webhooks.deliver_due()

    async def run_once(self, job_id: str | None = None) -> bool:
        """Process one chunk; return False when there was none to claim."""
        if not self._is_postgresql:
            return await self._process_optimistic(job_id) is not None

        claimed = await self._process_locked(job_id)
        if claimed is None:
            return False
        await self._finish_if_done(claimed.job_id)
        return True

    async def _process_locked(self, job_id: str | None) -> ClaimedChunk | None:
        async with self._session_factory() as session, session.begin():
            claimed = await self._claim(session, job_id, lock=True)
            if claimed is None:
                return None
            reason = await account_block_reason(session, claimed.account_id)
            if reason is None:
                results = await self._query_chunk(claimed)
                await session.run_sync(self._persist, claimed, results)
        if reason is not None:
            await self._pause(claimed, reason)
        return claimed

    async def _process_optimistic(self, job_id: str | None) -> ClaimedChunk | None:
        async with self._session_factory() as session:
            claimed = await self._claim(session, job_id, lock=False)
            if claimed is None:
                return None
            reason = await account_block_reason(session, claimed.account_id)
        if reason is not None:
            await self._pause(claimed, reason)
            return claimed

        results = await self._query_chunk(claimed)
        if self._sync_engine is not None:
            completed = await asyncio.to_thread(self._persist_blocking, claimed, results)
        else:
            async with self._session_factory() as session, session.begin():
                completed = await session.run_sync(self._persist_and_complete, claimed, results)
        if completed:
            log.info("batch_job_completed", job_id=claimed.job_id)
        return claimed

    def _persist_blocking(self, claimed: ClaimedChunk, results: list[QueryResult]) -> bool:
        assert self._sync_engine is not None
        with Session(self._sync_engine) as session:
            # BEGIN IMMEDIATE takes SQLite's write lock before the first statement.
            session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            completed = self._persist_and_complete(session, claimed, results)
            session.commit()
        return completed

    def _persist_and_complete(
        self, session: Session, claimed: ClaimedChunk, results: list[QueryResult]
    ) -> bool:
        """Persist the chunk and complete its job if no chunk is left; return whether it did.

        Only for SQLite, where this transaction holds the only write lock.
        """
        if not self._persist(session, claimed, results):
            return False
        completed = session.execute(_complete_statement(claimed.job_id, self._clock.now()))
        return bool(completed.rowcount == 1)  # type: ignore[attr-defined]

    async def _claim(
        self, session: AsyncSession, job_id: str | None, *, lock: bool
    ) -> ClaimedChunk | None:
        statement: Any = (
            select(
                BatchChunk.job_id,
                BatchChunk.chunk_no,
                BatchChunk.numbers,
                BatchJob.account_id,
                BatchJob.scene,
                BatchJob.action,
                Account.rate_limit,
            )
            .join(BatchJob, BatchJob.id == BatchChunk.job_id)
            .join(Account, Account.id == BatchJob.account_id)
            .where(
                BatchChunk.state == ChunkState.PENDING.value,
                BatchJob.state.in_(CLAIMABLE_STATES),
            )
            .order_by(BatchJob.created_at, BatchJob.id, BatchChunk.chunk_no)
            .limit(1)
        )
        if job_id is not None:
            statement = statement.where(BatchChunk.job_id == job_id)
        if lock:
            statement = statement.with_for_update(of=BatchChunk, skip_locked=True)
        row = (await session.execute(statement)).first()
        if row is None:
            return None
        return ClaimedChunk(
            job_id=row.job_id,
            chunk_no=row.chunk_no,
            account_id=row.account_id,
            scene=Scene(row.scene),
            action=row.action,
            rate_limit=row.rate_limit or self._default_rate_limit,
            numbers=decode_chunk_numbers(row.numbers),
        )

    async def _pause(self, claimed: ClaimedChunk, reason: BlockReason) -> None:
        """Pause the job of an account in arrears, or fail it for a purged account.

        A paused job keeps its pending chunks, so resuming it continues where it stopped.
        """
        values: dict[str, Any]
        if reason is BlockReason.PURGED:
            values = {
                "state": JobState.FAILED.value,
                "state_reason": "the account was purged after 7 days of arrears",
                "finished_at": self._clock.now(),
            }
        else:
            values = {
                "state": JobState.PAUSED.value,
                "state_reason": f"account queries are suspended ({reason.value}); "
                "resume the job once the account is active",
            }
        async with self._session_factory() as session, session.begin():
            await session.execute(
                update(BatchJob)
                .where(BatchJob.id == claimed.job_id, BatchJob.state.in_(CLAIMABLE_STATES))
                .values(**values)
            )
        log.warning(
            "batch_job_stopped", job_id=claimed.job_id, state=values["state"], reason=reason.value
        )

    async def _query_chunk(self, claimed: ClaimedChunk) -> list[QueryResult]:
        subjects = [ProbeSubject.for_number(item.number) for item in claimed.numbers]
        results: list[QueryResult] = []
        while len(results) < len(subjects):
            start = len(results)
            granted = await self._throttle(claimed, min(QUERY_SLICE, len(subjects) - start))
            # NOTE: refusals (OperatorLimit, RequestFrequencyLimit) are reported as
            # they come and not retried; such rows are free and can be resubmitted.
            results += await self._engine.query_many(
                subjects[start : start + granted], claimed.scene, concurrency=self._concurrency
            )
        return results

    async def _throttle(self, claimed: ClaimedChunk, requested: int) -> int:
        """Take up to ``requested`` queries from the account's rate limit; return how many (>= 1)."""
        if self._rate_limiter is None:
            return requested
        # A polling wait: the limiter may be shared through Redis with other processes,
        # so no local event signals when capacity returns.
        while True:
            granted = await self._rate_limiter.take(
                claimed.account_id, claimed.rate_limit, requested
            )
            if granted:
                return granted
            await asyncio.sleep(THROTTLE_WAIT_SECONDS)

    def _persist(self, session: Session, claimed: ClaimedChunk, results: list[QueryResult]) -> bool:
        """Store results, mark the chunk done and bill each number; False if already done.

        Synchronous, so a whole chunk runs in one thread or one ``run_sync`` call.
        """
        now = self._clock.now()
        answers = [_number_result(result) for result in results]
        stored = [answer.to_list() for answer in answers]
        done = session.execute(
            update(BatchChunk)
            .where(
                BatchChunk.job_id == claimed.job_id,
                BatchChunk.chunk_no == claimed.chunk_no,
                BatchChunk.state == ChunkState.PENDING.value,
            )
            .values(
                state=ChunkState.DONE.value,
                results=stored,
                completed_by=self.worker_id[:64],
                completed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            # Nothing was written in this transaction, so committing it is harmless.
            log.info("batch_chunk_already_done", job_id=claimed.job_id, chunk_no=claimed.chunk_no)
            return False

        self._bill(session, claimed, results, answers, now)

        counts: Counter[str] = Counter()
        billable = 0
        for answer in answers:
            billable += answer.billable
            counts[f"status:{answer.outcome}"] += 1
            if answer.carrier is not None:
                counts[f"carrier:{answer.carrier}"] += 1

        session.execute(
            update(BatchJob)
            .where(BatchJob.id == claimed.job_id)
            .values(
                queried_numbers=BatchJob.queried_numbers + len(results),
                billable_numbers=BatchJob.billable_numbers + billable,
                state=_running_state(),
                started_at=_coalesce_started(now),
            )
            .execution_options(synchronize_session=False)
        )
        self._add_counts(session, claimed.job_id, counts)
        return True

    def _bill(
        self,
        session: Session,
        claimed: ClaimedChunk,
        results: Sequence[QueryResult],
        answers: Sequence[NumberResult],
        now: datetime,
    ) -> None:
        # One meter_queries call meters the whole chunk in a few statements. The
        # stored results carry code, status, carrier and billable as plain values.
        request_prefix = f"{claimed.job_id}:"
        usages = [
            QueryUsage(
                account_id=claimed.account_id,
                action=claimed.action,
                request_id=f"{request_prefix}{item.row_number}",
                code=answer.code,
                status=answer.status,
                billable=answer.billable,
                masked_number=mask_number(item.number),
                carrier=answer.carrier,
                connector=result.connector,
                latency_ms=result.latency_ms,
                source="batch",
                occurred_at=now,
            )
            for item, result, answer in zip(claimed.numbers, results, answers, strict=True)
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

    async def _finish_if_done(self, job_id: str) -> None:
        # Whichever worker commits the last chunk finds no pending chunk left, because
        # its own commit came after every other chunk's commit it could race with.
        # A read first: while chunks remain, no write transaction is opened at all.
        async with self._session_factory() as session:
            if await session.scalar(select(_pending_chunks(job_id))):
                return
        async with self._session_factory() as session, session.begin():
            result = await session.execute(_complete_statement(job_id, self._clock.now()))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            log.info("batch_job_completed", job_id=job_id)


def _number_result(result: QueryResult) -> NumberResult:
    return NumberResult(
        code=result.code.value,
        status=result.scene_status,
        carrier=result.carrier.value if result.carrier is not None else None,
        billable=result.billable,
        ported=result.is_ported,
    )


def _pending_chunks(job_id: str) -> Any:
    return exists().where(BatchChunk.job_id == job_id, BatchChunk.state == ChunkState.PENDING.value)


def _complete_statement(job_id: str, now: datetime) -> Any:
    """Return the UPDATE that completes a claimable job with no pending chunk left."""
    return (
        update(BatchJob)
        .where(
            BatchJob.id == job_id,
            BatchJob.state.in_(CLAIMABLE_STATES),
            ~_pending_chunks(job_id),
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
