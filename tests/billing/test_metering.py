from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.errors import BillingAccountNotFound, QueryAlreadyRecorded
from phonestatus.billing.metering import BlockReason, account_block_reason, record_query
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.billing.prices import PriceList
from phonestatus.clock import FrozenClock

from .factories import FOR_REAL, make_account, make_package, usage

PRICES = PriceList.from_cny("0.1", {"DescribeEmptyNumber": "0.035"})


async def _events(session: AsyncSession, account_id: str) -> list[UsageEvent]:
    statement = select(UsageEvent).where(UsageEvent.account_id == account_id)
    return list((await session.scalars(statement)).all())


class TestRecordQuery:
    async def test_record_query_billable_without_package_accrues_balance_charge(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            record = await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
        assert record.id is not None
        assert len(events) == 1
        assert events[0].query_record_id == record.id
        assert events[0].package_id is None
        assert events[0].unit_price_li == 100

    async def test_record_query_not_billable_records_without_charge(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            await record_query(
                session,
                usage(account_id, at=clock.now(), status="UNKNOWN", billable=False),
                prices=PRICES,
            )
            await session.commit()

        async with session_factory() as session:
            records = await session.scalar(
                select(func.count()).where(QueryRecord.account_id == account_id)
            )
            events = await _events(session, account_id)
        assert records == 1
        assert events == []

    async def test_record_query_uses_action_price(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            await record_query(
                session,
                usage(account_id, at=clock.now(), action="DescribeEmptyNumber", status="EMPTY"),
                prices=PRICES,
            )
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
        assert events[0].unit_price_li == 35

    async def test_record_query_uses_package_expiring_first(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        later = await make_package(
            session_factory, account_id, clock=clock, quota=5, validity_days=60
        )
        sooner = await make_package(
            session_factory, account_id, clock=clock, quota=5, validity_days=10
        )

        async with session_factory() as session:
            await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
            sooner_row = await session.get(Package, sooner.id)
            later_row = await session.get(Package, later.id)
        assert events[0].package_id == sooner.id
        assert events[0].unit_price_li == 0
        assert sooner_row is not None and sooner_row.remaining == 4
        assert later_row is not None and later_row.remaining == 5

    async def test_record_query_after_quota_runs_out_charges_balance(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(session_factory, account_id, clock=clock, quota=2)

        async with session_factory() as session:
            for _ in range(3):
                await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
            row = await session.get(Package, package.id)
        assert [event.package_id for event in events] == [package.id, package.id, None]
        assert row is not None and row.remaining == 0

    async def test_record_query_skips_expired_package(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        await make_package(session_factory, account_id, clock=clock, quota=5, validity_days=1)
        clock.advance(timedelta(days=1))

        async with session_factory() as session:
            await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
        assert events[0].package_id is None

    async def test_record_query_duplicate_request_id_raises_and_keeps_transaction(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        first = usage(account_id, at=clock.now(), request_id=f"job-1:{account_id}:7")

        async with session_factory() as session:
            await record_query(session, first, prices=PRICES)
            await session.commit()
        async with session_factory() as session:
            with pytest.raises(QueryAlreadyRecorded) as caught:
                await record_query(session, first, prices=PRICES)
            await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            events = await _events(session, account_id)
        assert caught.value.request_id == first.request_id
        assert len(events) == 2

    async def test_record_query_rollback_leaves_nothing(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(session_factory, account_id, clock=clock, quota=3)

        async with session_factory() as session:
            await record_query(session, usage(account_id, at=clock.now()), prices=PRICES)
            await session.rollback()

        async with session_factory() as session:
            events = await _events(session, account_id)
            row = await session.get(Package, package.id)
        assert events == []
        assert row is not None and row.remaining == 3

    async def test_record_query_naive_time_raises(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        naive = usage("acc_0000000000000000", at=clock.now().replace(tzinfo=None))

        async with session_factory() as session:
            with pytest.raises(ValueError, match="naive"):
                await record_query(session, naive, prices=PRICES)


class TestAccountBlockReason:
    async def test_account_block_reason_active_returns_none(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)

        async with session_factory() as session:
            assert await account_block_reason(session, account_id) is None

    @pytest.mark.parametrize(
        ("state", "reason"),
        [(AccountState.SUSPENDED, BlockReason.ARREARS), (AccountState.PURGED, BlockReason.PURGED)],
    )
    async def test_account_block_reason_maps_state(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        state: AccountState,
        reason: BlockReason,
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        async with session_factory() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            account.state = state
            await session.commit()

        async with session_factory() as session:
            assert await account_block_reason(session, account_id) is reason

    async def test_account_block_reason_unknown_account_raises(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_factory() as session:
            with pytest.raises(BillingAccountNotFound):
                await account_block_reason(session, "acc_ffffffffffffffff")


def test_price_list_default_is_one_tenth_cny() -> None:
    assert PriceList().unit_price_li(FOR_REAL) == 100
