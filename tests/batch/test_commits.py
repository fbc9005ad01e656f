"""SQLite chunk commits in a writer process: results, billing and crash behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.batch.commits import ProcessCommits
from phonestatus.batch.worker import BatchWorker
from phonestatus.billing import PriceList
from phonestatus.settings import Settings
from phonestatus.storage.writer import WriterConfig, WriterProcess, WriterProcessError

from .conftest import submit, write_numbers
from .test_crash import assert_answered_once, wait_for_exit
from .test_worker import sample_numbers

pytestmark = pytest.mark.slow


def process_commits(db_url: str, *, idle_seconds: float = 60.0) -> ProcessCommits:
    config = WriterConfig(
        database_url=Settings(database_url=db_url).sqlalchemy_url,
        log_level=logging.INFO,
        json_logs=True,
    )
    writer = WriterProcess(config, idle_seconds=idle_seconds)
    return ProcessCommits(writer, prices=PriceList(), worker_id="test-writer")


@pytest.fixture
async def commits(db_url: str, db_backend: str) -> AsyncIterator[ProcessCommits]:
    if db_backend != "sqlite":
        pytest.skip("the writer process serves SQLite; PostgreSQL commits in the claim")
    commits = process_commits(db_url)
    yield commits
    await commits.aclose()


def command_line_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode()


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


class TestProcessCommits:
    async def test_job_billed_once(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        commits: ProcessCommits,
        tmp_path: Path,
    ) -> None:
        numbers = sample_numbers(120)
        path = write_numbers(tmp_path / "a.csv", [*numbers, *numbers[:15]])
        job_id = await submit(session_factory, account_id, path, chunk_size=25)

        await make_worker(commits=commits).run_until_idle(job_id)

        await assert_answered_once(session_factory, job_id, 120)

    async def test_writer_killed_between_commits(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        commits: ProcessCommits,
        tmp_path: Path,
    ) -> None:
        path = write_numbers(tmp_path / "a.csv", sample_numbers(100))
        job_id = await submit(session_factory, account_id, path, chunk_size=20)
        worker = make_worker(commits=commits)
        assert await worker.run_once(job_id)
        assert await worker._drain()
        first_pid = commits.pid
        assert first_pid is not None

        kill(first_pid)
        await wait_for_exit(first_pid)
        await worker.run_until_idle(job_id)

        assert commits.pid not in (None, first_pid)
        await assert_answered_once(session_factory, job_id, 100)

    async def test_writer_killed_mid_commit(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        commits: ProcessCommits,
        tmp_path: Path,
    ) -> None:
        path = write_numbers(tmp_path / "a.csv", sample_numbers(3000))
        job_id = await submit(session_factory, account_id, path, chunk_size=1500)
        worker = make_worker(commits=commits)
        # Start the writer, then kill it while the first chunk is on its way or committing.
        assert await worker.run_once(job_id)
        for _ in range(3000):
            if commits.pid is not None:
                break
            await asyncio.sleep(0.01)
        assert commits.pid is not None
        kill(commits.pid)

        # Either the commit landed before the kill, or it fails and the chunk stays
        # pending. Both must end with every number queried and billed once.
        with contextlib.suppress(WriterProcessError):
            await worker._drain()
        await worker.run_until_idle(job_id)

        await assert_answered_once(session_factory, job_id, 3000)

    async def test_database_url_not_in_argv(
        self,
        db_url: str,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        commits: ProcessCommits,
        tmp_path: Path,
    ) -> None:
        path = write_numbers(tmp_path / "a.csv", sample_numbers(10))
        job_id = await submit(session_factory, account_id, path, chunk_size=5)
        worker = make_worker(commits=commits)
        assert await worker.run_once(job_id)
        assert await worker._drain()
        assert commits.pid is not None

        command_line = command_line_of(commits.pid)

        assert "sqlite" not in command_line
        assert Path(db_url.split("///")[-1]).name not in command_line

    async def test_idle_writer_stops_then_restarts(
        self,
        db_url: str,
        db_backend: str,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        if db_backend != "sqlite":
            pytest.skip("the writer process serves SQLite")
        commits = process_commits(db_url, idle_seconds=0.2)
        try:
            path = write_numbers(tmp_path / "a.csv", sample_numbers(40))
            job_id = await submit(session_factory, account_id, path, chunk_size=20)
            worker = make_worker(commits=commits)
            assert await worker.run_once(job_id)
            assert await worker._drain()
            first_pid = commits.pid
            assert first_pid is not None

            for _ in range(500):
                if commits.pid is None:
                    break
                await asyncio.sleep(0.02)
            assert commits.pid is None
            await worker.run_until_idle(job_id)

            await assert_answered_once(session_factory, job_id, 40)
        finally:
            await commits.aclose()
