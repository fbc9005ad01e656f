from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.batching import SQLITE_ROWS_PER_INSERT, record_queries
from phonestatus.billing.metering import record_query
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.billing.prices import PriceList
from phonestatus.clock import FrozenClock

from .factories import make_account, make_package, usage

PRICES = PriceList.from_cny("0.1", {"DescribeEmptyNumber": "0.035"})


async def _events(
    session_factory: async_sessionmaker[AsyncSession], account_id: str
) -> list[UsageEvent]:
    async with session_factory() as session:
        statement = (
            select(UsageEvent)
            .where(UsageEvent.account_id == account_id)
            .order_by(UsageEvent.query_record_id)
        )
        return list((await session.scalars(statement)).all())


async def _remaining(session_factory: async_sessionmaker[AsyncSession], package_id: str) -> int:
    async with session_factory() as session:
        package = await session.get(Package, package_id)
        assert package is not None
        return package.remaining


class TestRecordQueries:
    async def test_record_queries_packages_first_then_balance(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        later = await make_package(
            session_factory, account_id, clock=clock, quota=3, validity_days=20
        )
        sooner = await make_package(
            session_factory, account_id, clock=clock, quota=2, validity_days=5
        )
        usages = [usage(account_id, at=clock.now()) for _ in range(7)]

        async with session_factory() as session:
            records = await record_queries(session, usages, prices=PRICES)
            await session.commit()

        events = await _events(session_factory, account_id)
        assert all(record is not None for record in records)
        assert [event.package_id for event in events] == [sooner.id] * 2 + [later.id] * 3 + [
            None
        ] * 2
        assert [event.unit_price_li for event in events] == [0] * 5 + [100] * 2
        assert await _remaining(session_factory, sooner.id) == 0
        assert await _remaining(session_factory, later.id) == 0

    async def test_record_queries_skips_not_billable(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        usages = [
            usage(account_id, at=clock.now(), status="UNKNOWN", billable=False),
            usage(account_id, at=clock.now(), action="DescribeEmptyNumber", status="EMPTY"),
        ]

        async with session_factory() as session:
            records = await record_queries(session, usages, prices=PRICES)
            await session.commit()

        events = await _events(session_factory, account_id)
        assert len([record for record in records if record is not None]) == 2
        assert [(event.action, event.unit_price_li) for event in events] == [
            ("DescribeEmptyNumber", 35)
        ]

    async def test_record_queries_duplicates_return_none(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        known = usage(account_id, at=clock.now(), request_id=f"known-{account_id}")
        async with session_factory() as session:
            await record_queries(session, [known], prices=PRICES)
            await session.commit()
        fresh = usage(account_id, at=clock.now())

        async with session_factory() as session:
            records = await record_queries(session, [known, fresh, fresh], prices=PRICES)
            await session.commit()

        events = await _events(session_factory, account_id)
        assert records[0] is None
        assert records[1] is not None
        assert records[2] is None
        assert len(events) == 2

    async def test_record_queries_several_accounts(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        first = await make_account(session_factory, clock=clock)
        second = await make_account(session_factory, clock=clock)
        package = await make_package(session_factory, first, clock=clock, quota=1)
        usages = [
            usage(first, at=clock.now()),
            usage(second, at=clock.now()),
            usage(first, at=clock.now()),
        ]

        async with session_factory() as session:
            await record_queries(session, usages, prices=PRICES)
            await session.commit()

        assert [event.package_id for event in await _events(session_factory, first)] == [
            package.id,
            None,
        ]
        assert [event.package_id for event in await _events(session_factory, second)] == [None]

    async def test_record_queries_package_expiring_inside_group_unused(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(
            session_factory, account_id, clock=clock, quota=5, validity_days=1
        )
        expiry = package.expires_at
        usages = [
            usage(account_id, at=expiry - timedelta(seconds=1)),
            usage(account_id, at=expiry),
        ]

        async with session_factory() as session:
            await record_queries(session, usages, prices=PRICES)
            await session.commit()

        assert [event.package_id for event in await _events(session_factory, account_id)] == [
            None,
            None,
        ]

    async def test_record_queries_rollback_leaves_quota(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        package = await make_package(session_factory, account_id, clock=clock, quota=4)

        async with session_factory() as session:
            await record_queries(
                session, [usage(account_id, at=clock.now()) for _ in range(3)], prices=PRICES
            )
            await session.rollback()

        assert await _remaining(session_factory, package.id) == 4
        assert await _events(session_factory, account_id) == []

    async def test_record_queries_naive_time_raises(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        naive = usage("acc_0000000000000000", at=clock.now().replace(tzinfo=None))

        async with session_factory() as session:
            with pytest.raises(ValueError, match="naive"):
                await record_queries(session, [naive], prices=PRICES)


class TestRecordIds:
    @pytest.mark.parametrize("known_count", [0, 3])
    async def test_each_record_id_is_its_usages_record(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: FrozenClock,
        known_count: int,
    ) -> None:
        """Ids line up with usages, over several INSERT statements, with known ids or without."""
        account_id = await make_account(session_factory, clock=clock)
        usages = [
            usage(account_id, at=clock.now(), billable=index % 3 != 0)
            for index in range(SQLITE_ROWS_PER_INSERT + 7)
        ]
        known = usages[100 : 100 + known_count]
        async with session_factory() as session:
            await record_queries(session, known, prices=PRICES)
            await session.commit()

        async with session_factory() as session:
            records = await record_queries(session, usages, prices=PRICES)
            await session.commit()

        new = [item for item in usages if item not in known]
        assert [record is None for record in records] == [item in known for item in usages]
        async with session_factory() as session:
            stored = dict(
                (
                    await session.execute(
                        select(QueryRecord.id, QueryRecord.request_id).where(
                            QueryRecord.account_id == account_id
                        )
                    )
                ).all()
            )
        for item, record in zip(usages, records, strict=True):
            if record is not None:
                assert stored[record.id] == item.request_id
        events = await _events(session_factory, account_id)
        charged = {stored[event.query_record_id] for event in events}
        assert charged == {item.request_id for item in usages if item.billable}
        assert len(events) == len([item for item in new if item.billable]) + len(
            [item for item in known if item.billable]
        )


class TestStoredRows:
    async def test_record_queries_rows_match_record_query_rows(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        """Group metering stores the same values, times included, as the one-query path."""
        account_id = await make_account(session_factory, clock=clock)
        # A whole second: a time format that drops zero microseconds would differ here.
        whole_second = clock.now().replace(microsecond=0)
        alone = usage(account_id, at=whole_second, request_id=f"alone-{account_id}")
        grouped = usage(account_id, at=whole_second, request_id=f"grouped-{account_id}")

        async with session_factory() as session:
            await record_query(session, alone, prices=PRICES)
            await session.commit()
        async with session_factory() as session:
            [record] = await record_queries(session, [grouped], prices=PRICES)
            await session.commit()
        assert record is not None

        async with session_factory() as session:
            stored = {
                row.request_id: row
                for row in (
                    await session.execute(
                        text(
                            "SELECT request_id, occurred_at, billable, latency_ms, status "
                            "FROM billing_query_records WHERE account_id = :account_id"
                        ),
                        {"account_id": account_id},
                    )
                ).all()
            }
            event_times = (
                await session.execute(
                    text(
                        "SELECT occurred_at FROM billing_usage_events "
                        "WHERE account_id = :account_id"
                    ),
                    {"account_id": account_id},
                )
            ).scalars()
            by_time = await session.scalars(
                select(QueryRecord.request_id).where(
                    QueryRecord.account_id == account_id, QueryRecord.occurred_at == whole_second
                )
            )
            assert sorted(by_time.all()) == sorted([alone.request_id, grouped.request_id])

        raw_alone, raw_grouped = stored[alone.request_id], stored[grouped.request_id]
        assert tuple(raw_grouped)[1:] == tuple(raw_alone)[1:]
        assert len(set(event_times.all())) == 1
