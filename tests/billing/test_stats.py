from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.metering import record_query
from phonestatus.billing.models import Bill
from phonestatus.billing.prices import PriceList
from phonestatus.billing.settlement import settle_due_cycles, start_settlement
from phonestatus.billing.stats import (
    Period,
    cost_statistics,
    monthly_estimate,
    usage_statistics,
)
from phonestatus.clock import FrozenClock
from phonestatus.settings import Settings

from .factories import make_account, make_package, record_many, usage

MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 4, 1, tzinfo=UTC)


async def _mixed_usage(
    session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> str:
    account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
    await make_package(session_factory, account_id, clock=clock, quota=1)
    day_one = clock.now()
    day_two = clock.now() + timedelta(days=1)
    async with session_factory() as session:
        for at in (day_one, day_one, day_two):
            await record_query(session, usage(account_id, at=at), prices=PriceList())
        await record_query(
            session,
            usage(account_id, at=day_one, status="UNKNOWN", billable=False),
            prices=PriceList(),
        )
        await session.commit()
    return account_id


class TestUsageStatistics:
    async def test_usage_statistics_by_day_and_status(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _mixed_usage(session_factory, clock)

        async with session_factory() as session:
            rows = await usage_statistics(
                session, account_id, start=MONTH_START, end=MONTH_END, period=Period.DAY
            )

        assert [(row.period, row.status, row.total, row.billable) for row in rows] == [
            ("2026-03-10", "NORMAL", 2, 2),
            ("2026-03-10", "UNKNOWN", 1, 0),
            ("2026-03-11", "NORMAL", 1, 1),
        ]

    async def test_usage_statistics_by_month(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _mixed_usage(session_factory, clock)

        async with session_factory() as session:
            rows = await usage_statistics(
                session, account_id, start=MONTH_START, end=MONTH_END, period=Period.MONTH
            )

        assert [(row.period, row.status, row.total) for row in rows] == [
            ("2026-03", "NORMAL", 3),
            ("2026-03", "UNKNOWN", 1),
        ]


class TestCostStatistics:
    async def test_cost_statistics_by_day(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _mixed_usage(session_factory, clock)

        async with session_factory() as session:
            rows = await cost_statistics(session, account_id, start=MONTH_START, end=MONTH_END)

        assert [
            (row.period, row.count, row.package_count, row.balance_count, row.amount_li)
            for row in rows
        ] == [("2026-03-10", 2, 1, 1, 100), ("2026-03-11", 1, 0, 1, 100)]


class TestMonthlyEstimate:
    async def test_monthly_estimate_counts_unit_price_times_billable(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _mixed_usage(session_factory, clock)
        clock.advance(timedelta(days=2))
        await settle_due_cycles(session_factory, clock=clock)

        async with session_factory() as session:
            estimate = await monthly_estimate(session, account_id, clock=clock)
            other_month = await monthly_estimate(session, account_id, clock=clock, period="2026-04")

        assert estimate.period == "2026-03"
        assert estimate.billable_count == 3
        assert estimate.balance_count == 2
        assert estimate.estimated_li == 200
        assert estimate.billed_li == 200
        assert other_month.billable_count == 0


class TestSettlementLoop:
    async def test_start_settlement_bills_in_background(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        settings_factory: Callable[..., Settings],
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=10_000)
        await record_many(session_factory, account_id, at=clock.now(), count=2)
        clock.advance(timedelta(hours=1))
        settings = settings_factory(
            settlement_interval_seconds=1, billing_settlement_grace_seconds=0
        )

        stop = start_settlement(session_factory, settings, clock=clock)
        try:
            bill = None
            for _ in range(100):
                async with session_factory() as session:
                    bill = await session.scalar(select(Bill).where(Bill.account_id == account_id))
                if bill is not None:
                    break
                await asyncio.sleep(0.1)
        finally:
            await stop()

        assert bill is not None
        assert bill.charged_li == 200

    async def test_start_settlement_disabled_starts_nothing(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        settings_factory: Callable[..., Settings],
    ) -> None:
        settings = settings_factory(billing_settlement_enabled=False)
        before = {task.get_name() for task in asyncio.all_tasks()}

        stop = start_settlement(session_factory, settings, clock=clock)
        during = {task.get_name() for task in asyncio.all_tasks()}
        await stop()

        assert "billing-settlement" not in during - before
