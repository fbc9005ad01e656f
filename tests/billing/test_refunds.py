from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.errors import InvoiceRefused, RefundRefusal, RefundRefused
from phonestatus.billing.invoices import (
    issue_month_invoice,
    issue_package_invoice,
    month_bounds,
    void_invoice,
)
from phonestatus.billing.ledger import get_balance
from phonestatus.billing.models import RefundDestination
from phonestatus.billing.refunds import add_months, refund_package
from phonestatus.billing.settlement import settle_due_cycles
from phonestatus.billing.stats import monthly_estimate
from phonestatus.clock import FrozenClock

from .factories import make_account, make_package, record_many

PRICE_LI = 900_000


class TestAddMonths:
    @pytest.mark.parametrize(
        ("start", "months", "expected"),
        [
            (datetime(2026, 1, 31, 10, tzinfo=UTC), 1, datetime(2026, 2, 28, 10, tzinfo=UTC)),
            (datetime(2026, 8, 31, tzinfo=UTC), 6, datetime(2027, 2, 28, tzinfo=UTC)),
            (
                datetime(2026, 3, 10, 10, 17, tzinfo=UTC),
                3,
                datetime(2026, 6, 10, 10, 17, tzinfo=UTC),
            ),
            (datetime(2026, 12, 1, tzinfo=UTC), 1, datetime(2027, 1, 1, tzinfo=UTC)),
        ],
    )
    def test_add_months_clamps_day(self, start: datetime, months: int, expected: datetime) -> None:
        assert add_months(start, months) == expected


class TestRefundPackage:
    async def _package(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        *,
        channel: str,
    ) -> tuple[str, str]:
        account_id = await make_account(session_factory, clock=clock, balance_li=PRICE_LI)
        package = await make_package(
            session_factory,
            account_id,
            clock=clock,
            quota=100,
            price_li=PRICE_LI,
            validity_days=365,
            channel=channel,
        )
        return account_id, package.id

    async def _refund(
        self, session_factory: async_sessionmaker[AsyncSession], package_id: str, clock: FrozenClock
    ) -> tuple[RefundDestination, int]:
        async with session_factory() as session:
            result = await refund_package(session, package_id, clock=clock)
            await session.commit()
        return result.destination, result.amount_li

    async def _balance(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str
    ) -> int:
        async with session_factory() as session:
            return (await get_balance(session, account_id)).balance_li

    async def test_refund_at_3_months_to_channel(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id, package_id = await self._package(session_factory, clock, channel="alipay")
        clock.set(add_months(clock.now(), 3))

        destination, amount = await self._refund(session_factory, package_id, clock)

        assert destination is RefundDestination.ORIGINAL_CHANNEL
        assert amount == PRICE_LI
        assert await self._balance(session_factory, account_id) == PRICE_LI

    async def test_refund_after_3_months_to_balance(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id, package_id = await self._package(session_factory, clock, channel="alipay")
        clock.set(add_months(clock.now(), 3) + timedelta(seconds=1))

        destination, _ = await self._refund(session_factory, package_id, clock)

        assert destination is RefundDestination.BALANCE
        assert await self._balance(session_factory, account_id) == 2 * PRICE_LI

    async def test_refund_package_from_balance_goes_to_balance(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id, package_id = await self._package(session_factory, clock, channel="balance")
        paid = await self._balance(session_factory, account_id)
        clock.advance(timedelta(days=1))

        destination, _ = await self._refund(session_factory, package_id, clock)

        assert paid == 0
        assert destination is RefundDestination.BALANCE
        assert await self._balance(session_factory, account_id) == PRICE_LI

    async def test_refund_package_exactly_6_months_allowed(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        _, package_id = await self._package(session_factory, clock, channel="balance")
        clock.set(add_months(clock.now(), 6))

        destination, _ = await self._refund(session_factory, package_id, clock)

        assert destination is RefundDestination.BALANCE

    async def test_refund_package_after_6_months_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        _, package_id = await self._package(session_factory, clock, channel="balance")
        clock.set(add_months(clock.now(), 6) + timedelta(seconds=1))

        with pytest.raises(RefundRefused) as caught:
            await self._refund(session_factory, package_id, clock)

        assert caught.value.reason is RefundRefusal.TOO_OLD

    async def test_refund_package_used_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id, package_id = await self._package(session_factory, clock, channel="balance")
        await record_many(session_factory, account_id, at=clock.now(), count=1)

        with pytest.raises(RefundRefused) as caught:
            await self._refund(session_factory, package_id, clock)

        assert caught.value.reason is RefundRefusal.USED

    async def test_refund_package_twice_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        _, package_id = await self._package(session_factory, clock, channel="balance")
        await self._refund(session_factory, package_id, clock)

        with pytest.raises(RefundRefused) as caught:
            await self._refund(session_factory, package_id, clock)

        assert caught.value.reason is RefundRefusal.ALREADY_REFUNDED

    async def test_refund_package_with_invoice_needs_void_first(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        _, package_id = await self._package(session_factory, clock, channel="alipay")
        async with session_factory() as session:
            invoice = await issue_package_invoice(session, package_id, clock=clock)
            await session.commit()

        with pytest.raises(RefundRefused) as caught:
            await self._refund(session_factory, package_id, clock)
        async with session_factory() as session:
            await void_invoice(session, invoice.id, clock=clock)
            await session.commit()
        destination, _ = await self._refund(session_factory, package_id, clock)

        assert caught.value.reason is RefundRefusal.INVOICE_ISSUED
        assert destination is RefundDestination.ORIGINAL_CHANNEL

    async def test_refunded_package_no_longer_meters(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id, package_id = await self._package(session_factory, clock, channel="balance")
        await self._refund(session_factory, package_id, clock)

        await record_many(session_factory, account_id, at=clock.now(), count=1)

        async with session_factory() as session:
            estimate = await monthly_estimate(session, account_id, clock=clock)
        assert estimate.package_count == 0
        assert estimate.balance_count == 1


class TestInvoices:
    async def test_issue_package_invoice_twice_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(
            session_factory, account_id, clock=clock, quota=10, price_li=PRICE_LI
        )
        async with session_factory() as session:
            await issue_package_invoice(session, package.id, clock=clock)
            await session.commit()

        async with session_factory() as session:
            with pytest.raises(InvoiceRefused, match="already has invoice"):
                await issue_package_invoice(session, package.id, clock=clock)

    async def test_void_invoice_twice_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(
            session_factory, account_id, clock=clock, quota=10, price_li=PRICE_LI
        )
        async with session_factory() as session:
            invoice = await issue_package_invoice(session, package.id, clock=clock)
            await void_invoice(session, invoice.id, clock=clock)
            await session.commit()

        async with session_factory() as session:
            with pytest.raises(InvoiceRefused, match="already void"):
                await void_invoice(session, invoice.id, clock=clock)


class TestMonthInvoice:
    async def test_issue_month_invoice_sums_bills(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await record_many(session_factory, account_id, at=clock.now(), count=3)
        clock.advance(timedelta(hours=1))
        await settle_due_cycles(session_factory, clock=clock)
        clock.set(datetime(2026, 4, 1, tzinfo=UTC))

        async with session_factory() as session:
            invoice = await issue_month_invoice(session, account_id, "2026-03", clock=clock)
            await session.commit()

        assert invoice.amount_li == 300
        assert invoice.period == "2026-03"

    async def test_issue_month_invoice_unfinished_month_refused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            with pytest.raises(InvoiceRefused, match="has not ended"):
                await issue_month_invoice(session, account_id, "2026-03", clock=clock)

    @pytest.mark.parametrize("period", ["2026-13", "2026-3", "march", "2026-00"])
    def test_month_bounds_invalid_raises(self, period: str) -> None:
        with pytest.raises(ValueError, match="invalid month"):
            month_bounds(period)
