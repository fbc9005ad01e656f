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
  above protects billing if a second process runs anyway. The transaction
  runs whole in a thread or a writer process (``batch.commits``), because
  through aiosqlite every statement waits for a turn of the event loop. With
  the writer process the worker queries the next chunk while the last one
  commits. The same transaction completes the job when no chunk is left
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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account
from phonestatus.batch.commits import (
    ChunkCommit,
    ChunkCommitter,
    ThreadCommits,
    complete_statement,
    pending_chunks,
)
from phonestatus.batch.intake import decode_chunk_columns
from phonestatus.batch.models import CLAIMABLE_STATES, BatchChunk, BatchJob, ChunkState, JobState
from phonestatus.batch.results import NumberResult
from phonestatus.batch.webhooks import WebhookSender
from phonestatus.batch.workerlock import WorkerLock
from phonestatus.billing import BlockReason, PriceList, account_block_reason
from phonestatus.clock import Clock
from phonestatus.detection import ProbeSubject, QueryEngine, QueryResult, Scene
from phonestatus.ratelimit import AccountRateLimiter

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
    numbers: list[str]  # the chunk's distinct numbers, in order
    row_numbers: list[int]  # the row each number first appears on
    claimed_at: datetime  # aware UTC; the job's start if this is its first chunk


class Commits(Protocol):
    """Destination of a SQLite worker's queried chunks: a thread or a process (``batch.commits``)."""

    pipelined: bool

    async def commit(self, commit: ChunkCommit) -> bool: ...

    async def aclose(self) -> None: ...


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
        commits: Commits | None = None,
        lock: WorkerLock | None = None,
    ) -> None:
        """``lock``: on SQLite, taken before claiming and given back when idle (``workerlock``)."""
        self._session_factory = session_factory
        self._engine = engine
        self._prices = prices
        self._clock = clock
        self._rate_limiter = rate_limiter
        self._default_rate_limit = default_rate_limit
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._webhooks = webhooks
        self.worker_id = worker_id or default_worker_id()
        bind = session_factory.kw.get("bind")
        self._is_postgresql = bind is not None and bind.dialect.name == "postgresql"
        # SQLite has one writer, so chunks in parallel would only wait for each other.
        self._lanes = max(1, parallel_chunks) if self._is_postgresql else 1
        self._committer = ChunkCommitter(
            prices=prices, worker_id=self.worker_id, is_postgresql=self._is_postgresql
        )
        # PostgreSQL commits in the claim's transaction, and only SQLite commits elsewhere:
        # through ``commits``, else a thread on ``sync_engine``, else the async session.
        self._commits: Commits | None = None
        if not self._is_postgresql:
            if commits is not None:
                self._commits = commits
            elif sync_engine is not None:
                self._commits = ThreadCommits(sync_engine, prices=prices, worker_id=self.worker_id)
        # A pipelined SQLite commit still running while the next chunk is queried.
        self._in_flight: asyncio.Task[bool] | None = None
        self._in_flight_chunk: tuple[str, int] | None = None
        self._lock = None if self._is_postgresql else lock

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
            try:
                await self._drain()
            except Exception:
                log.exception("batch_worker_error", worker_id=self.worker_id)
            if self._lock is not None:
                self._lock.release()
            log.info("batch_worker_stopped", worker_id=self.worker_id)

    async def run_until_idle(self, job_id: str | None = None) -> None:
        """Process chunks until none is claimable (of ``job_id`` when given)."""

        async def lane() -> None:
            while await self.run_once(job_id):
                pass

        try:
            await asyncio.gather(*(lane() for _ in range(self._lanes)))
        finally:
            # After an error, unless a commit is still in flight (it would be claimed again).
            if self._lock is not None and self._in_flight is None:
                self._lock.release()
        if self._webhooks is not None:
            await self._webhooks.deliver_due()

    async def run_job(self, job_id: str) -> BatchJob:
        """Process the job's chunks until it is completed, paused, failed or cancelled.

        Unlike ``run_until_idle`` this also waits, polling, while other
        workers hold the SQLite lock or still commit the job's last chunks.
        Returns the job as it ends.
        """
        while True:
            if await self.run_once(job_id):
                continue
            await self._finish_if_done(job_id)
            async with self._session_factory() as session:
                job = await session.get(BatchJob, job_id)
            if job is None:
                raise ValueError(f"batch job {job_id!r} not found")
            if job.state not in CLAIMABLE_STATES:
                if self._webhooks is not None:
                    await self._webhooks.deliver_due()
                return job
            await asyncio.sleep(self._poll_seconds)

    async def run_once(self, job_id: str | None = None) -> bool:
        """Process one chunk and return whether there was anything to do."""
        if not self._is_postgresql:
            if self._lock is not None and not self._lock.acquire():
                # Another worker on this database is busy, so it claims the chunks.
                return False
            busy = await self._process_optimistic(job_id)
            if not busy and self._lock is not None:
                # Idle, with no commit in flight: another worker may take over.
                self._lock.release()
            return busy

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
                commit = self._chunk_commit(claimed, await self._query_chunk(claimed))
                await session.run_sync(self._committer.persist, commit)
        if reason is not None:
            await self._pause(claimed, reason)
        return claimed

    async def _process_optimistic(self, job_id: str | None) -> bool:
        reason: BlockReason | None = None
        async with self._session_factory() as session:
            claimed = await self._claim(session, job_id, lock=False, skip=self._in_flight_chunk)
            if claimed is not None:
                reason = await account_block_reason(session, claimed.account_id)
        if claimed is None:
            # Nothing new to claim: a chunk still committing is the last work left.
            return await self._drain()
        if reason is not None:
            await self._drain()
            await self._pause(claimed, reason)
            return True

        commit = self._chunk_commit(claimed, await self._query_chunk(claimed))
        # One commit at a time, in claim order, so the last one completes the job.
        await self._drain()
        if self._commits is not None and self._commits.pipelined:
            self._in_flight = asyncio.create_task(self._commits.commit(commit))
            self._in_flight_chunk = (commit.job_id, commit.chunk_no)
            return True
        if self._commits is not None:
            completed = await self._commits.commit(commit)
        else:
            async with self._session_factory() as session, session.begin():
                completed = await session.run_sync(self._committer.persist_and_complete, commit)
        if completed:
            log.info("batch_job_completed", job_id=commit.job_id)
        return True

    async def _drain(self) -> bool:
        """Wait for the pipelined commit, if any, and return whether there was one.

        A failed commit raises here, and its chunk stays pending for the next claim.
        """
        task, self._in_flight = self._in_flight, None
        chunk, self._in_flight_chunk = self._in_flight_chunk, None
        if task is None or chunk is None:
            return False
        if await task:
            log.info("batch_job_completed", job_id=chunk[0])
        return True

    def _chunk_commit(self, claimed: ClaimedChunk, results: list[QueryResult]) -> ChunkCommit:
        return ChunkCommit(
            job_id=claimed.job_id,
            chunk_no=claimed.chunk_no,
            account_id=claimed.account_id,
            action=claimed.action,
            numbers=claimed.numbers,
            row_numbers=claimed.row_numbers,
            claimed_at=claimed.claimed_at,
            results=[_number_result(result) for result in results],
            connectors=[result.connector for result in results],
            latencies=[result.latency_ms for result in results],
            now=self._clock.now(),
        )

    async def _claim(
        self,
        session: AsyncSession,
        job_id: str | None,
        *,
        lock: bool,
        skip: tuple[str, int] | None = None,
    ) -> ClaimedChunk | None:
        """Return the oldest job's first pending chunk, except ``skip`` (job id, chunk no)."""
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
        if skip is not None:
            statement = statement.where(
                ~and_(BatchChunk.job_id == skip[0], BatchChunk.chunk_no == skip[1])
            )
        if lock:
            statement = statement.with_for_update(of=BatchChunk, skip_locked=True)
        row = (await session.execute(statement)).first()
        if row is None:
            return None
        numbers, row_numbers = decode_chunk_columns(row.numbers)
        return ClaimedChunk(
            job_id=row.job_id,
            chunk_no=row.chunk_no,
            account_id=row.account_id,
            scene=Scene(row.scene),
            action=row.action,
            rate_limit=row.rate_limit or self._default_rate_limit,
            numbers=numbers,
            row_numbers=row_numbers,
            claimed_at=self._clock.now(),
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
        subjects = [ProbeSubject.for_number(number) for number in claimed.numbers]
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

    async def _finish_if_done(self, job_id: str) -> None:
        # Whichever worker commits the last chunk finds no pending chunk left, because
        # its own commit came after every other chunk's commit it could race with.
        # A read first: while chunks remain, no write transaction is opened at all.
        async with self._session_factory() as session:
            if await session.scalar(select(pending_chunks(job_id))):
                return
        async with self._session_factory() as session, session.begin():
            result = await session.execute(complete_statement(job_id, self._clock.now()))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            log.info("batch_job_completed", job_id=job_id)


def default_worker_id() -> str:
    """Name a worker by host and process, as stored on the chunks it completes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _number_result(result: QueryResult) -> NumberResult:
    # Every field that NumberResult or QueryResult.billable reads, so billable
    # and the enum values are computed once per key, not once per number.
    key = (
        result.code,
        result.scene,
        result.status,
        result.scene_status,
        result.carrier,
        result.is_ported,
        result.is_privacy_number,
    )
    number_result = _NUMBER_RESULTS.get(key)
    if number_result is None:
        number_result = NumberResult(
            code=result.code.value,
            status=result.scene_status,
            carrier=result.carrier.value if result.carrier is not None else None,
            billable=result.billable,
            ported=result.is_ported,
        )
        # Few distinct results exist (codes x statuses x carriers), so the cache stays small.
        _NUMBER_RESULTS[key] = number_result
    return number_result


_NUMBER_RESULTS: dict[tuple[Any, ...], NumberResult] = {}
