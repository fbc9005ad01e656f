from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from phonestatus.accounts.models import Account, AccountState
from phonestatus.batch.export import export_job
from phonestatus.batch.models import BatchChunk, BatchJob, JobState
from phonestatus.batch.service import cancel_job, get_job, job_counts, resume_job
from phonestatus.batch.worker import BatchWorker
from phonestatus.batch.writers import OutputFormat
from phonestatus.billing.models import QueryRecord
from phonestatus.clock import FrozenClock
from phonestatus.settings import Settings

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

    async def test_job_started_when_first_chunk_claimed(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        """StartedAt is when querying began, not when the first chunk committed."""

        class TickingClock(FrozenClock):
            def now(self) -> datetime:
                self.advance(timedelta(seconds=1))
                return super().now()

        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(3))
        )

        await make_worker(clock=TickingClock(CLOCK.now())).run_until_idle()

        async with session_factory() as session:
            job = await get_job(session, job_id)
            first_commit = await session.scalar(
                select(func.min(BatchChunk.completed_at)).where(BatchChunk.job_id == job_id)
            )
        assert job.started_at is not None
        assert first_commit is not None
        assert job.started_at < first_commit

    async def test_query_records_describe_each_row(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        rows = ["13800138000", "13800138000", "13912345678"]
        job_id = await submit(session_factory, account_id, write_numbers(tmp_path / "a.csv", rows))

        await make_worker().run_until_idle()

        async with session_factory() as session:
            job = await get_job(session, job_id)
            records = (
                await session.scalars(
                    select(QueryRecord)
                    .where(QueryRecord.request_id.startswith(f"{job_id}:"))
                    .order_by(QueryRecord.request_id)
                )
            ).all()
        # Row 1 is the header; row 3 repeats row 2's number and has no record of its own.
        assert [record.request_id for record in records] == [f"{job_id}:2", f"{job_id}:4"]
        assert [record.masked_number for record in records] == ["138****8000", "139****5678"]
        for record in records:
            assert record.account_id == account_id
            assert record.action == job.action
            assert record.source == "batch"
            assert record.code == "OK"
            assert record.status is not None
            assert record.carrier in {"CMCC", "CUCC", "CTCC", "CBN"}
            assert record.connector is not None
            assert record.occurred_at.tzinfo is not None

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


class TestExportInTwoProcesses:
    """Large jobs are written by this process and a helper process; the file must not change."""

    async def run_job(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> BatchJob:
        # Blocks of 4 rows, so a small file has many blocks to split.
        monkeypatch.setattr("phonestatus.batch.intake.ROWS_PER_BLOCK", 4)
        numbers = sample_numbers(30)
        rows = [*numbers, numbers[3], "1.38001E+10", "=cmd", numbers[29], "abc"]
        job_id = await submit(session_factory, account_id, write_numbers(tmp_path / "a.csv", rows))
        await make_worker().run_until_idle()
        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.block_count == 9
        return job

    @pytest.mark.parametrize("output_format", list(OutputFormat))
    async def test_split_file_equals_single_process_file(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        db_url: str,
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        output_format: OutputFormat,
    ) -> None:
        job = await self.run_job(session_factory, account_id, make_worker, tmp_path, monkeypatch)
        single = tmp_path / f"single.{output_format.value}"
        split = tmp_path / f"split.{output_format.value}"
        await export_job(session_factory, job, single, output_format)

        with capture_logs() as logs:
            summary = await export_job(
                session_factory,
                job,
                split,
                output_format,
                database_url=Settings(database_url=db_url).sqlalchemy_url,
                split_min_rows=1,
            )

        assert [entry["event"] for entry in logs] == []
        assert summary.rows == 35
        assert summary.duplicate_rows == 2
        assert file_contents(split) == file_contents(single)
        # The helper's spool files are gone.
        assert file_names(tmp_path) == ["a.csv", single.name, split.name]

    async def test_failed_helper_leaves_the_file_whole(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        job = await self.run_job(session_factory, account_id, make_worker, tmp_path, monkeypatch)
        single = tmp_path / "single.xlsx"
        await export_job(session_factory, job, single, OutputFormat.XLSX)
        # The helper finds no batch tables in this database, so it exits with an error.
        empty = Settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}").sqlalchemy_url
        split = tmp_path / "split.xlsx"

        with capture_logs() as logs:
            await export_job(
                session_factory, job, split, OutputFormat.XLSX, database_url=empty, split_min_rows=1
            )

        assert [entry["event"] for entry in logs] == ["batch_export_helper_failed"]
        assert file_contents(split) == file_contents(single)


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def file_contents(path: Path) -> object:
    """A CSV file's bytes, or an XLSX file's parts (the container's timestamps differ)."""
    if path.suffix == ".csv":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
