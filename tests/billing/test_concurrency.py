"""Metering under load from several processes, and after a SIGKILL in the middle of load."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.ledger import get_balance
from phonestatus.billing.models import Bill, Package, QueryRecord, UsageEvent
from phonestatus.billing.settlement import settle_due_cycles
from phonestatus.clock import FrozenClock, SystemClock
from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, create_session_factory, upgrade_database

from .factories import make_account, make_package

WORKER = Path(__file__).with_name("load_worker.py")
PROCESSES = 4
QUERIES_PER_PROCESS = 500
LANES_PER_PROCESS = 8

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_factory(
    request: pytest.FixtureRequest, fresh_database_url: Callable[[str], str]
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """A migrated database of its own, so totals and settlement see only this test."""
    url = fresh_database_url(str(request.param))
    upgrade_database(to_async_url(url))
    engine = create_engine(to_async_url(url))
    try:
        yield url, create_session_factory(engine)
    finally:
        await engine.dispose()


async def _totals(
    session_factory: async_sessionmaker[AsyncSession], account_id: str
) -> dict[str, int]:
    async with session_factory() as session:

        async def count(statement: object) -> int:
            return int(await session.scalar(statement) or 0)  # type: ignore[arg-type]

        return {
            "records": await count(
                select(func.count()).where(QueryRecord.account_id == account_id)
            ),
            "events": await count(select(func.count()).where(UsageEvent.account_id == account_id)),
            "distinct_records": await count(
                select(func.count(func.distinct(UsageEvent.query_record_id))).where(
                    UsageEvent.account_id == account_id
                )
            ),
            "orphan_events": await count(
                select(func.count())
                .select_from(UsageEvent)
                .outerjoin(QueryRecord, QueryRecord.id == UsageEvent.query_record_id)
                .where(UsageEvent.account_id == account_id, QueryRecord.id.is_(None))
            ),
            "package_events": await count(
                select(func.count()).where(
                    UsageEvent.account_id == account_id, UsageEvent.package_id.is_not(None)
                )
            ),
            "balance_events": await count(
                select(func.count()).where(
                    UsageEvent.account_id == account_id, UsageEvent.package_id.is_(None)
                )
            ),
            "quota": await count(
                select(func.sum(Package.quota)).where(Package.account_id == account_id)
            ),
            "remaining": await count(
                select(func.sum(Package.remaining)).where(Package.account_id == account_id)
            ),
            "min_remaining": await count(
                select(func.min(Package.remaining)).where(Package.account_id == account_id)
            ),
        }


class TestConcurrentMetering:
    @pytest.mark.parametrize("group", [1, 10], ids=["record_query", "record_queries"])
    async def test_4_processes_charge_each_once(
        self, fresh_factory: tuple[str, async_sessionmaker[AsyncSession]], group: int
    ) -> None:
        url, session_factory = fresh_factory
        clock = SystemClock()
        account_id = await make_account(session_factory, clock=clock)
        await make_package(session_factory, account_id, clock=clock, quota=100, validity_days=5)
        await make_package(session_factory, account_id, clock=clock, quota=200, validity_days=9)

        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                url,
                account_id,
                f"p{index}",
                str(QUERIES_PER_PROCESS),
                str(LANES_PER_PROCESS),
                str(group),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for index in range(PROCESSES)
        ]
        outputs = [await worker.communicate() for worker in workers]

        for worker, (_, stderr) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, stderr.decode()[-2000:]
        printed = {line for stdout, _ in outputs for line in stdout.decode().split()}
        totals = await _totals(session_factory, account_id)
        billable = PROCESSES * QUERIES_PER_PROCESS
        assert len(printed) == billable
        assert totals["records"] == billable
        assert totals["events"] == billable
        assert totals["distinct_records"] == billable
        assert totals["orphan_events"] == 0
        assert totals["min_remaining"] == 0
        assert totals["package_events"] == totals["quota"] - totals["remaining"] == 300
        assert totals["balance_events"] == billable - 300

        frozen = FrozenClock(SystemClock().now())
        frozen.advance(timedelta(hours=2))
        await settle_due_cycles(session_factory, clock=frozen)
        async with session_factory() as session:
            charged = await session.scalar(
                select(func.sum(Bill.charged_li)).where(Bill.account_id == account_id)
            )
            balance = await get_balance(session, account_id)
        assert charged == (billable - 300) * 100
        assert balance.balance_li == -(billable - 300) * 100


class TestCrash:
    async def test_sigkill_under_load_loses_no_committed_charge(
        self, fresh_factory: tuple[str, async_sessionmaker[AsyncSession]]
    ) -> None:
        url, session_factory = fresh_factory
        clock = SystemClock()
        account_id = await make_account(session_factory, clock=clock)
        await make_package(session_factory, account_id, clock=clock, quota=150, validity_days=5)

        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            url,
            account_id,
            "crash",
            "0",
            "4",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert worker.stdout is not None
        printed: list[str] = []
        while len(printed) < 300:
            line = await worker.stdout.readline()
            assert line, "the worker stopped before the crash point"
            printed.append(line.decode().strip())
        worker.send_signal(signal.SIGKILL)
        rest = await worker.stdout.read()
        await worker.wait()
        printed.extend(rest.decode().split())

        async with session_factory() as session:
            recorded = set(
                (
                    await session.scalars(
                        select(QueryRecord.request_id).where(QueryRecord.account_id == account_id)
                    )
                ).all()
            )
        totals = await _totals(session_factory, account_id)
        assert worker.returncode == -signal.SIGKILL
        assert set(printed) <= recorded
        # At most the 4 transactions in flight may have committed without being reported.
        assert len(recorded) - len(set(printed)) <= 4
        assert totals["events"] == totals["records"] == len(recorded)
        assert totals["orphan_events"] == 0
        assert totals["package_events"] == totals["quota"] - totals["remaining"]
        assert totals["package_events"] == 150
