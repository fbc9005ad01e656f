from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.ledger import get_balance, recharge
from phonestatus.billing.metering import BlockReason, account_block_reason
from phonestatus.billing.models import Bill, BillLine, UsageEvent
from phonestatus.billing.payments import OfflinePaymentProvider
from phonestatus.billing.prices import PriceList
from phonestatus.billing.settlement import cycle_start, settle_due_cycles
from phonestatus.clock import FrozenClock

from .factories import FOR_REAL, RecordingNotifier, make_account, make_package, record_many

HOUR = timedelta(hours=1)


async def _bills(session_factory: async_sessionmaker[AsyncSession], account_id: str) -> list[Bill]:
    async with session_factory() as session:
        statement = select(Bill).where(Bill.account_id == account_id).order_by(Bill.cycle_start)
        return list((await session.scalars(statement)).all())


async def _lines(session_factory: async_sessionmaker[AsyncSession], bill_id: str) -> list[BillLine]:
    async with session_factory() as session:
        statement = select(BillLine).where(BillLine.bill_id == bill_id).order_by(BillLine.action)
        return list((await session.scalars(statement)).all())


class TestCycleStart:
    def test_cycle_start_hourly(self) -> None:
        moment = datetime(2026, 3, 10, 10, 59, 59, tzinfo=UTC)
        assert cycle_start(moment) == datetime(2026, 3, 10, 10, tzinfo=UTC)

    def test_cycle_start_on_boundary_is_itself(self) -> None:
        moment = datetime(2026, 3, 10, 11, tzinfo=UTC)
        assert cycle_start(moment) == moment

    def test_cycle_start_custom_length(self) -> None:
        moment = datetime(2026, 3, 10, 10, 44, tzinfo=UTC)
        assert cycle_start(moment, timedelta(minutes=15)) == datetime(
            2026, 3, 10, 10, 30, tzinfo=UTC
        )


class TestSettleDueCycles:
    async def test_settle_due_cycles_open_cycle_not_billed(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await record_many(session_factory, account_id, at=clock.now(), count=3)

        await settle_due_cycles(session_factory, clock=clock)

        assert await _bills(session_factory, account_id) == []

    async def test_settle_due_cycles_bills_each_cycle_per_action(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        prices = PriceList.from_cny("0.1", {"DescribeEmptyNumber": "0.035"})
        await record_many(session_factory, account_id, at=clock.now(), count=3)
        await record_many(
            session_factory,
            account_id,
            at=clock.now(),
            count=3,
            action="DescribeEmptyNumber",
            prices=prices,
        )
        await record_many(session_factory, account_id, at=clock.now() + HOUR, count=2)
        clock.advance(2 * HOUR)

        await settle_due_cycles(session_factory, clock=clock)

        bills = await _bills(session_factory, account_id)
        assert [bill.cycle_start for bill in bills] == [
            datetime(2026, 3, 10, 10, tzinfo=UTC),
            datetime(2026, 3, 10, 11, tzinfo=UTC),
        ]
        first_lines = await _lines(session_factory, bills[0].id)
        assert [(line.action, line.count, line.amount_li) for line in first_lines] == [
            ("DescribeEmptyNumber", 3, 105),
            (FOR_REAL, 3, 300),
        ]
        # 0.405 CNY rounds half-up once per bill, to 0.41 CNY.
        assert bills[0].amount_li == 405
        assert bills[0].charged_li == 410
        assert bills[1].charged_li == 200
        async with session_factory() as session:
            balance = await get_balance(session, account_id)
        assert balance.balance_li == 100_000 - 410 - 200

    async def test_settle_due_cycles_twice_bills_once(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await record_many(session_factory, account_id, at=clock.now(), count=4)
        clock.advance(HOUR)

        await settle_due_cycles(session_factory, clock=clock)
        await settle_due_cycles(session_factory, clock=clock)

        bills = await _bills(session_factory, account_id)
        assert len(bills) == 1
        assert bills[0].query_count == 4

    async def test_settle_due_cycles_package_usage_free_in_bill(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await make_package(session_factory, account_id, clock=clock, quota=2)
        await record_many(session_factory, account_id, at=clock.now(), count=5)
        clock.advance(HOUR)

        await settle_due_cycles(session_factory, clock=clock)

        bills = await _bills(session_factory, account_id)
        lines = await _lines(session_factory, bills[0].id)
        assert (lines[0].count, lines[0].package_count, lines[0].balance_count) == (5, 2, 3)
        assert bills[0].charged_li == 300

    async def test_settle_due_cycles_grace_delays_settlement(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await record_many(session_factory, account_id, at=clock.now(), count=1)
        clock.set(datetime(2026, 3, 10, 11, 1, tzinfo=UTC))

        await settle_due_cycles(session_factory, clock=clock, grace=timedelta(minutes=2))
        before = await _bills(session_factory, account_id)
        clock.advance(timedelta(minutes=1))
        await settle_due_cycles(session_factory, clock=clock, grace=timedelta(minutes=2))

        assert before == []
        assert len(await _bills(session_factory, account_id)) == 1

    async def test_settle_due_cycles_until_limits_cycles(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        await record_many(session_factory, account_id, at=clock.now(), count=1)
        await record_many(session_factory, account_id, at=clock.now() + HOUR, count=1)
        clock.advance(3 * HOUR)

        await settle_due_cycles(
            session_factory, clock=clock, until=datetime(2026, 3, 10, 11, 30, tzinfo=UTC)
        )

        bills = await _bills(session_factory, account_id)
        assert [bill.cycle_start.hour for bill in bills] == [10]

    async def test_settle_due_cycles_late_event_gets_extra_bill(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=100_000)
        at = clock.now()
        await record_many(session_factory, account_id, at=at, count=1)
        clock.advance(HOUR)
        await settle_due_cycles(session_factory, clock=clock)
        await record_many(session_factory, account_id, at=at, count=1)

        await settle_due_cycles(session_factory, clock=clock)

        bills = await _bills(session_factory, account_id)
        assert [bill.query_count for bill in bills] == [1, 1]
        async with session_factory() as session:
            unbilled = (
                await session.scalars(
                    select(UsageEvent.id).where(
                        UsageEvent.account_id == account_id, UsageEvent.bill_id.is_(None)
                    )
                )
            ).all()
        assert unbilled == []


class TestArrears:
    async def test_settlement_insufficient_balance_suspends(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=250)
        notifier = RecordingNotifier()
        await record_many(session_factory, account_id, at=clock.now(), count=3)
        clock.advance(HOUR)

        report = await settle_due_cycles(session_factory, clock=clock, notifier=notifier)

        async with session_factory() as session:
            balance = await get_balance(session, account_id)
            reason = await account_block_reason(session, account_id)
        assert account_id in report.suspended
        assert balance.balance_li == -50
        assert balance.in_arrears is True
        assert balance.arrears_since == clock.now()
        assert reason is BlockReason.ARREARS
        assert notifier.kinds(account_id) == ["arrears"]

    async def test_settlement_arrears_notifies_once(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        notifier = RecordingNotifier()
        await record_many(session_factory, account_id, at=clock.now(), count=1)
        clock.advance(HOUR)
        await settle_due_cycles(session_factory, clock=clock, notifier=notifier)
        await record_many(session_factory, account_id, at=clock.now(), count=1)
        clock.advance(HOUR)

        await settle_due_cycles(session_factory, clock=clock, notifier=notifier)
        await settle_due_cycles(session_factory, clock=clock, notifier=notifier)

        assert notifier.kinds(account_id) == ["arrears"]

    async def test_recharge_clearing_arrears_reactivates_at_once(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        await record_many(session_factory, account_id, at=clock.now(), count=5)
        clock.advance(HOUR)
        await settle_due_cycles(session_factory, clock=clock)

        async with session_factory() as session:
            partial = await recharge(
                session,
                account_id,
                200,
                provider=OfflinePaymentProvider(),
                channel="offline",
                clock=clock,
            )
            await session.commit()
        async with session_factory() as session:
            still_blocked = await account_block_reason(session, account_id)
            result = await recharge(
                session,
                account_id,
                300,
                provider=OfflinePaymentProvider(),
                channel="offline",
                clock=clock,
            )
            await session.commit()
        async with session_factory() as session:
            reason = await account_block_reason(session, account_id)
            account = await session.get(Account, account_id)

        assert partial.reactivated is False
        assert still_blocked is BlockReason.ARREARS
        assert result.reactivated is True
        assert result.balance_li == 0
        assert reason is None
        assert account is not None and account.state == AccountState.ACTIVE

    async def test_settlement_low_balance_notifies_once_per_recharge(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock, balance_li=1_000)
        notifier = RecordingNotifier()
        for _ in range(2):
            await record_many(session_factory, account_id, at=clock.now(), count=1)
            clock.advance(HOUR)
            await settle_due_cycles(
                session_factory, clock=clock, notifier=notifier, low_balance_li=5_000
            )

        assert notifier.kinds(account_id) == ["low_balance"]
        assert notifier.sent[-1].email == "billing@example.com"

    async def test_settlement_failing_notifier_does_not_resend(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        failing = RecordingNotifier(fail=True)
        working = RecordingNotifier()
        await record_many(session_factory, account_id, at=clock.now(), count=1)
        clock.advance(HOUR)

        await settle_due_cycles(session_factory, clock=clock, notifier=failing)
        await settle_due_cycles(session_factory, clock=clock, notifier=working)

        assert working.kinds(account_id) == []
