"""Worker processes: SIGKILL mid-job and resume, and two processes sharing one job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.batch.intake import decode_chunk_numbers
from phonestatus.batch.models import BatchChunk, ChunkState, JobState
from phonestatus.batch.results import decode_chunk_results
from phonestatus.batch.service import get_job
from phonestatus.batch.worker import BatchWorker

from .conftest import billing_counts, submit, write_numbers
from .test_worker import sample_numbers

pytestmark = pytest.mark.slow

PROGRESS_DEADLINE_SECONDS = 120


def start_worker(db_url: str, data_dir: Path, *, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PHONESTATUS_DATABASE_URL": db_url,
        "PHONESTATUS_DATA_DIR": str(data_dir),
        "PHONESTATUS_SECRET_KEY": "crash-test-secret-key-0123456789abcdef",
        # Slow enough that the kill lands mid-job: about 50 ms per query.
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0.1",
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
        "PHONESTATUS_BATCH_QUERY_CONCURRENCY": str(concurrency),
    }
    command = [sys.executable, "-m", "phonestatus.cli", "batch", "work", "--until-idle"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_for_progress(
    session_factory: async_sessionmaker[AsyncSession],
    job_id: str,
    at_least: int,
    process: subprocess.Popen[bytes],
) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROGRESS_DEADLINE_SECONDS
    while loop.time() < deadline:
        async with session_factory() as session:
            job = await get_job(session, job_id)
        if job.queried_numbers >= at_least:
            return job.queried_numbers
        if process.poll() is not None:
            raise AssertionError(f"worker exited early: {process.stderr.read()!r}")  # type: ignore[union-attr]
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} made no progress within {PROGRESS_DEADLINE_SECONDS} s")


def child_pids(parent: int) -> list[int]:
    """Return the ids of the processes whose parent is ``parent``."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The command name in parentheses may hold spaces; the parent id follows the state.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def process_state(pid: int) -> str | None:
    """Return the State line of a process, or None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return None
    return next(line for line in lines if line.startswith("State:"))


async def wait_for_exit(pid: int) -> None:
    """Wait until ``pid`` has exited (gone, or a zombie left for its new parent to reap)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROGRESS_DEADLINE_SECONDS
    while loop.time() < deadline:
        state = process_state(pid)
        if state is None or "zombie" in state:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"process {pid} still runs {PROGRESS_DEADLINE_SECONDS} s later")


async def assert_answered_once(
    session_factory: async_sessionmaker[AsyncSession], job_id: str, distinct: int
) -> None:
    async with session_factory() as session:
        job = await get_job(session, job_id)
        chunks = (
            await session.execute(
                select(BatchChunk.state, BatchChunk.numbers, BatchChunk.results).where(
                    BatchChunk.job_id == job_id
                )
            )
        ).all()
    assert job.state == JobState.COMPLETED
    assert job.queried_numbers == distinct
    assert {state for state, _, _ in chunks} == {ChunkState.DONE.value}
    for _, numbers, results in chunks:
        _, positions = decode_chunk_results(results)
        assert len(positions) == len(decode_chunk_numbers(numbers))
    records, request_ids, billable = await billing_counts(session_factory, job_id)
    assert records == distinct
    assert request_ids == distinct
    assert billable == job.billable_numbers


class TestCrash:
    async def test_sigkill_mid_job_resumes_and_bills_once(
        self,
        db_url: str,
        db_backend: str,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        numbers = sample_numbers(300)
        path = write_numbers(tmp_path / "a.csv", [*numbers, *numbers[:30]])
        job_id = await submit(session_factory, account_id, path, chunk_size=10)
        process = start_worker(db_url, tmp_path / "data", concurrency=2)
        try:
            done_before_kill = await wait_for_progress(session_factory, job_id, 40, process)
            writers = child_pids(process.pid)
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate()

        if db_backend == "sqlite":
            # The SQLite writer process reads the end of its pipe and exits too.
            assert len(writers) == 1
            await wait_for_exit(writers[0])

        async with session_factory() as session:
            killed = await get_job(session, job_id)
        assert killed.state == JobState.RUNNING
        assert done_before_kill <= killed.queried_numbers < 300

        await make_worker().run_until_idle(job_id)

        await assert_answered_once(session_factory, job_id, 300)


class TestSharing:
    async def test_two_processes_share_one_job(
        self,
        db_url: str,
        db_backend: str,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        tmp_path: Path,
    ) -> None:
        if db_backend != "postgresql":
            pytest.skip("SQLite runs one worker; sharing uses FOR UPDATE SKIP LOCKED")
        numbers = sample_numbers(600)
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", numbers), chunk_size=10
        )

        workers = [start_worker(db_url, tmp_path / f"data{n}", concurrency=4) for n in range(2)]
        for worker in workers:
            stderr = await asyncio.to_thread(worker.communicate)
            assert worker.returncode == 0, stderr

        await assert_answered_once(session_factory, job_id, 600)
        async with session_factory() as session:
            worker_ids = await session.scalar(
                select(func.count(func.distinct(BatchChunk.completed_by))).where(
                    BatchChunk.job_id == job_id
                )
            )
        assert worker_ids == 2
