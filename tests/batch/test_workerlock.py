"""The SQLite worker lock: one busy batch worker per database, released by process death."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from phonestatus.batch.models import JobState
from phonestatus.batch.service import pause_job
from phonestatus.batch.worker import BatchWorker
from phonestatus.batch.workerlock import LOCK_SUFFIX, WorkerLock
from phonestatus.settings import Settings

from .conftest import CLOCK, submit, write_numbers
from .test_crash import assert_answered_once
from .test_worker import sample_numbers


class TestWorkerLock:
    def test_for_database_sqlite_file(self, tmp_path: Path) -> None:
        url = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}").sqlalchemy_url

        lock = WorkerLock.for_database(url)

        assert lock is not None
        assert lock.path == tmp_path / f"db.sqlite3{LOCK_SUFFIX}"

    @pytest.mark.parametrize(
        "url",
        ["sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://postgres@127.0.0.1:5432/x"],
    )
    def test_for_database_without_file(self, url: str) -> None:
        assert WorkerLock.for_database(url) is None

    def test_second_lock_waits_for_release(self, tmp_path: Path) -> None:
        first, second = WorkerLock(tmp_path / "a.lock"), WorkerLock(tmp_path / "a.lock")

        assert first.acquire()
        assert first.acquire()  # holding it already
        assert not second.acquire()
        first.release()
        assert second.acquire()
        second.release()

    def test_killed_holder_frees_lock(self, tmp_path: Path) -> None:
        path = tmp_path / "a.lock"
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time\n"
                "from pathlib import Path\n"
                "from phonestatus.batch.workerlock import WorkerLock\n"
                "assert WorkerLock(Path(sys.argv[1])).acquire()\n"
                "print('held', flush=True)\n"
                "time.sleep(60)\n",
                str(path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            lock = WorkerLock(path)
            assert not lock.acquire()

            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()

            assert lock.acquire()
            lock.release()
        finally:
            holder.kill()
            holder.communicate()


class TestLockedWorkers:
    async def test_two_workers_query_each_chunk_once(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        db_url: str,
        db_backend: str,
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        """As `serve` and `batch run` on one SQLite file: the chunks are not queried twice."""
        if db_backend != "sqlite":
            pytest.skip("PostgreSQL workers claim chunks with FOR UPDATE SKIP LOCKED")
        url = Settings(database_url=db_url).sqlalchemy_url
        job_id = await submit(
            session_factory,
            account_id,
            write_numbers(tmp_path / "a.csv", sample_numbers(60)),
            chunk_size=5,
        )
        first = make_worker(lock=WorkerLock.for_database(url), poll_seconds=0.05)
        second = make_worker(lock=WorkerLock.for_database(url), poll_seconds=0.05)

        with capture_logs() as logs:
            jobs = await asyncio.gather(first.run_job(job_id), second.run_job(job_id))

        assert [job.state for job in jobs] == [JobState.COMPLETED, JobState.COMPLETED]
        events = [entry["event"] for entry in logs]
        assert "batch_chunk_already_done" not in events
        await assert_answered_once(session_factory, job_id, 60)

    async def test_run_job_returns_paused_job(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        """A job that stops short of completion ends the wait too."""
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", sample_numbers(10))
        )
        async with session_factory() as session, session.begin():
            await pause_job(session, job_id, clock=CLOCK)

        job = await asyncio.wait_for(make_worker(poll_seconds=0.05).run_job(job_id), timeout=30)

        assert job.state == JobState.PAUSED
        assert job.queried_numbers == 0
