from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.errors import InsufficientBalance, PackageTypeNotFound
from phonestatus.billing.ledger import get_balance
from phonestatus.billing.packages import (
    buy_package,
    list_package_types,
    quota_summary,
    set_package_type,
)
from phonestatus.clock import FrozenClock

from .factories import make_account, make_package, record_many


class TestCatalog:
    async def test_list_package_types_has_defaults(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_factory() as session:
            codes = [package_type.code for package_type in await list_package_types(session)]

        assert {"status-10k", "status-100k", "status-1m"} <= set(codes)

    async def test_set_package_type_inactive_cannot_be_bought(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=10_000)
        async with session_factory() as session:
            await set_package_type(
                session, "retired", name="Old", quota=5, price_li=1, validity_days=1, active=False
            )
            await session.commit()

        async with session_factory() as session:
            with pytest.raises(PackageTypeNotFound) as caught:
                await buy_package(session, account_id, "retired", clock=clock)

        assert caught.value.code == "retired"


class TestBuyPackage:
    async def test_buy_package_from_balance_debits_price(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=1_000_000)

        package = await make_package(
            session_factory, account_id, clock=clock, quota=10, price_li=900_000, channel="balance"
        )

        async with session_factory() as session:
            balance = await get_balance(session, account_id)
        assert balance.balance_li == 100_000
        assert package.expires_at == clock.now() + timedelta(days=30)
        assert package.payment_channel == "balance"

    async def test_buy_package_insufficient_balance_raises(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100)

        with pytest.raises(InsufficientBalance) as caught:
            await make_package(
                session_factory, account_id, clock=clock, quota=10, price_li=900, channel="balance"
            )

        assert (caught.value.balance_li, caught.value.requested_li) == (100, 900)

    async def test_buy_package_channel_without_reference_raises(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            with pytest.raises(ValueError, match="payment reference"):
                await buy_package(session, account_id, "status-10k", channel="alipay", clock=clock)


class TestQuotaSummary:
    async def test_quota_summary_counts_usable_packages(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        soon = await make_package(
            session_factory, account_id, clock=clock, quota=5, validity_days=2
        )
        await make_package(session_factory, account_id, clock=clock, quota=7, validity_days=9)
        await record_many(session_factory, account_id, at=clock.now(), count=2)

        async with session_factory() as session:
            now = await quota_summary(session, account_id, clock=clock)
            clock.advance(timedelta(days=3))
            later = await quota_summary(session, account_id, clock=clock)

        assert (now.remaining, now.packages, now.next_expiry) == (10, 2, soon.expires_at)
        assert (later.remaining, later.packages) == (7, 1)
