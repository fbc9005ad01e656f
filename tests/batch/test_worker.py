from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account, AccountState
from phonestatus.batch.export import export_job
from phonestatus.batch.models import BatchChunk, JobState
from phonestatus.batch.service import cancel_job, get_job, job_counts, resume_job
from phonestatus.batch.worker import BatchWorker
from phonestatus.batch.writers import OutputFormat

from .conftest import CLOCK, billing_counts, submit, write_numbers

SEGMENTS = ["138", "139", "130", "133", "189", "150", "186", "177"]


def sample_numbers(count: int) -> list[str]:
    return [f"{SEGMENTS[i % len(SEGMENTS)]}{(i * 7919) % 10**8:08d}" for i in range(count)]


class TestRunUntilIdle:
    async def test_run_until_idle_answers_every_row(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        numbers = sample_numbers(40)
        rows = [*numbers, numbers[0], numbers[5], "bad"]
        job_id = await submit(session_factory, account_id, write_numbers(tmp_path / "a.csv", rows))

        await make_worker().run_until_idle()

        async with session_factory() as session:
            job = await get_job(session, job_id)
            counts = await job_counts(session, job_id)
        assert job.state == JobState.COMPLETED
        assert job.queried_numbers == 40
        assert job.started_at is not None
        assert job.finished_at is not None
        assert sum(counts["status"].values()) == 40
        records, distinct, billable = await billing_counts(session_factory, job_id)
        assert records == 40
        assert distinct == 40
        assert billable == job.billable_numbers

    async def test_run_until_idle_result_file_has_every_row(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        numbers = sample_numbers(12)
        rows = [*numbers, numbers[3], "1.38001E+10"]
        job_id = await submit(session_factory, account_id, write_numbers(tmp_path / "a.csv", rows))
        await make_worker().run_until_idle()
        async with session_factory() as session:
            job = await get_job(session, job_id)
        output = tmp_path / "out.csv"

        summary = await export_job(session_factory, job, output, OutputFormat.CSV)

        with output.open(encoding="utf-8-sig", newline="") as stream:
            records = list(csv.reader(stream))[1:]
        assert summary.rows == 14
        assert len(records) == 14
        assert [record[0] for record in records] == [str(n) for n in range(2, 16)]
        duplicate, original = records[12], records[3]
        assert duplicate[2:6] == original[2:6]
        assert "重复" in duplicate[6]
        assert records[13][3] == "INVALID"
        assert "NOT_QUERIED" not in {record[3] for record in records}

    async def test_cancelled_job_rows_not_queried(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(20))
        )
        worker = make_worker()
        assert await worker.run_once(job_id)
        async with session_factory() as session, session.begin():
            await cancel_job(session, job_id, clock=CLOCK)

        await worker.run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.CANCELLED
        assert job.queried_numbers == 7
        records, _, _ = await billing_counts(session_factory, job_id)
        assert records == 7
        output = tmp_path / "out.csv"
        await export_job(session_factory, job, output, OutputFormat.CSV)
        with output.open(encoding="utf-8-sig", newline="") as stream:
            outcomes = [record[3] for record in list(csv.reader(stream))[1:]]
        assert outcomes.count("NOT_QUERIED") == 13

    async def test_account_in_arrears_pauses_job(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(10))
        )
        async with session_factory() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account_id).values(state=AccountState.SUSPENDED)
            )

        await make_worker().run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.PAUSED
        assert "arrears" in (job.state_reason or "")
        assert (await billing_counts(session_factory, job_id))[0] == 0

        async with session_factory() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account_id).values(state=AccountState.ACTIVE)
            )
            await resume_job(session, job_id, clock=CLOCK)
        await make_worker().run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.COMPLETED
        assert (await billing_counts(session_factory, job_id))[0] == 10


class AlternatingLimiter:
    """A fake account limiter that grants nothing, then one query, in turn, and records calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.granted = 0
        self.limits: set[tuple[str, str]] = set()

    async def take(self, account_id: str, limit: str, requested: int) -> int:
        self.calls += 1
        self.limits.add((account_id, limit))
        granted = min(requested, (self.calls + 1) % 2)
        self.granted += granted
        return granted


class TestAccountRateLimit:
    async def test_queries_wait_for_account_limit(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(9))
        )
        async with session_factory() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account_id).values(rate_limit="7/second")
            )
        limiter = AlternatingLimiter()

        await make_worker(rate_limiter=limiter, concurrency=1).run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.COMPLETED
        assert limiter.granted == 9
        assert limiter.calls == 18
        assert limiter.limits == {(account_id, "7/second")}


class TestPurgedAccount:
    async def test_purged_account_fails_job(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(3))
        )
        async with session_factory() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account_id).values(state=AccountState.PURGED)
            )

        await make_worker().run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.FAILED
        assert "purged" in (job.state_reason or "")
        assert job.finished_at is not None


class TestCommitPaths:
    async def test_without_blocking_engine_bills_once(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        numbers = sample_numbers(30)
        path = write_numbers(tmp_path / "a.csv", [*numbers, numbers[2]])
        job_id = await submit(session_factory, account_id, path)

        await make_worker(sync_engine=None).run_until_idle(job_id)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        records, distinct, billable = await billing_counts(session_factory, job_id)
        assert job.state == JobState.COMPLETED
        assert job.queried_numbers == 30
        assert records == 30
        assert distinct == 30
        assert billable == job.billable_numbers


class TestPersist:
    async def test_chunk_finished_elsewhere_not_billed_again(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(5))
        )
        worker = make_worker()
        async with session_factory() as session:
            claimed = await worker._claim(session, job_id, lock=False)
        assert claimed is not None
        commit = worker._chunk_commit(claimed, await worker._query_chunk(claimed))
        async with session_factory() as session, session.begin():
            assert await session.run_sync(worker._committer.persist, commit)

        async with session_factory() as session, session.begin():
            second = await session.run_sync(worker._committer.persist, commit)

        assert second is False
        records, distinct, _ = await billing_counts(session_factory, job_id)
        assert records == 5
        assert distinct == 5
        async with session_factory() as session:
            done = await session.scalar(
                select(func.count()).select_from(BatchChunk).where(BatchChunk.job_id == job_id)
            )
        assert done == 1
