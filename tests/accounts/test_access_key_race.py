"""Two processes creating AccessKeys for the same accounts cannot exceed the limit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts import service
from phonestatus.accounts.models import AccessKey
from phonestatus.clock import FrozenClock
from phonestatus.settings import Settings

from .factories import make_account

WORKER = Path(__file__).with_name("access_key_race_worker.py")
PROCESSES = 2
ACCOUNTS = 40


def _wait_for_files(paths: list[Path], workers: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in paths):
        for worker in workers:
            if worker.poll() is not None:
                raise AssertionError(f"worker exited early: {worker.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("workers did not get ready within 60 s")
        time.sleep(0.01)


def _run_workers(url: str, account_ids: list[str], tmp_path: Path) -> list[dict[str, int]]:
    go_file = tmp_path / "go"
    ready_files = [tmp_path / f"ready-{index}" for index in range(PROCESSES)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(ready), str(go_file), *account_ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in ready_files
    ]
    _wait_for_files(ready_files, workers)
    go_file.touch()
    outputs = [worker.communicate(timeout=120) for worker in workers]

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    return [json.loads(stdout) for stdout, _ in outputs]


class TestCreateAccessKeyRace:
    async def test_create_access_key_two_processes_respect_limit(
        self,
        db_url: str,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        tmp_path: Path,
    ) -> None:
        async with session_factory() as session:
            accounts = [await make_account(session, clock=clock) for _ in range(ACCOUNTS)]
        account_ids = [account.id for account in accounts]
        url = Settings(database_url=db_url).sqlalchemy_url

        results = await asyncio.to_thread(_run_workers, url, account_ids, tmp_path)

        attempts = PROCESSES * ACCOUNTS * service.ACCESS_KEY_LIMIT
        assert sum(result["created"] for result in results) == ACCOUNTS * service.ACCESS_KEY_LIMIT
        assert sum(result["refused"] for result in results) == attempts - ACCOUNTS * 2
        async with session_factory() as session:
            counts = await session.execute(
                sa.select(AccessKey.account_id, sa.func.count())
                .where(AccessKey.account_id.in_(account_ids))
                .group_by(AccessKey.account_id)
            )
            per_account = {account_id: count for account_id, count in counts.all()}
        assert per_account == dict.fromkeys(account_ids, service.ACCESS_KEY_LIMIT)
