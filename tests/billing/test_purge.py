from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.errors import AccountPurged
from phonestatus.billing.ledger import recharge
from phonestatus.billing.metering import BlockReason, account_block_reason
from phonestatus.billing.models import Bill, QueryRecord, UsageEvent
from phonestatus.billing.payments import OfflinePaymentProvider
from phonestatus.billing.purge import registered_purge_hooks
from phonestatus.billing.settlement import settle_due_cycles
from phonestatus.clock import FrozenClock

from .factories import RecordingNotifier, make_account, record_many

DAY = timedelta(days=1)


async def _into_arrears(
    session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
) -> str:
    account_id = await make_account(session_factory, clock=clock)
    await record_many(session_factory, account_id, at=clock.now(), count=3)
    clock.advance(timedelta(hours=1))
    await settle_due_cycles(session_factory, clock=clock)
    return account_id


async def _count(session: AsyncSession, model: type, account_id: str) -> int:
    column = model.account_id  # type: ignore[attr-defined]
    return int(await session.scalar(select(func.count()).where(column == account_id)) or 0)


class TestPurge:
    async def test_purge_before_day_7_keeps_data(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _into_arrears(session_factory, clock)
        clock.advance(7 * DAY - timedelta(seconds=1))

        report = await settle_due_cycles(session_factory, clock=clock)

        async with session_factory() as session:
            records = await _count(session, QueryRecord, account_id)
            reason = await account_block_reason(session, account_id)
        assert account_id not in report.purged
        assert records == 3
        assert reason is BlockReason.ARREARS

    async def test_purge_on_day_7_deletes_data(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _into_arrears(session_factory, clock)
        notifier = RecordingNotifier()
        hooked: list[str] = []

        async def batch_hook(session: AsyncSession, purged_id: str) -> None:
            hooked.append(purged_id)

        clock.advance(7 * DAY)
        report = await settle_due_cycles(
            session_factory, clock=clock, notifier=notifier, purge_hooks=[batch_hook]
        )

        async with session_factory() as session:
            records = await _count(session, QueryRecord, account_id)
            events = await _count(session, UsageEvent, account_id)
            bills = await _count(session, Bill, account_id)
            account = await session.get(Account, account_id)
            reason = await account_block_reason(session, account_id)
        assert account_id in report.purged
        assert account_id in hooked
        assert (records, events) == (0, 0)
        assert bills == 1
        assert account is not None and account.state == AccountState.PURGED
        assert reason is BlockReason.PURGED
        assert "purged" in notifier.kinds(account_id)

    async def test_recharge_on_day_6_prevents_purge(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _into_arrears(session_factory, clock)
        clock.advance(6 * DAY)
        async with session_factory() as session:
            await recharge(
                session,
                account_id,
                1_000,
                provider=OfflinePaymentProvider(),
                channel="offline",
                clock=clock,
            )
            await session.commit()

        clock.advance(2 * DAY)
        report = await settle_due_cycles(session_factory, clock=clock)

        async with session_factory() as session:
            records = await _count(session, QueryRecord, account_id)
            reason = await account_block_reason(session, account_id)
        assert account_id not in report.purged
        assert records == 3
        assert reason is None

    async def test_recharge_after_purge_raises(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await _into_arrears(session_factory, clock)
        clock.advance(8 * DAY)
        await settle_due_cycles(session_factory, clock=clock)

        async with session_factory() as session:
            try:
                await recharge(
                    session,
                    account_id,
                    1_000,
                    provider=OfflinePaymentProvider(),
                    channel="offline",
                    clock=clock,
                )
            except AccountPurged as exc:
                refused = exc
            else:
                refused = None

        assert refused is not None and refused.account_id == account_id


class TestRegisteredPurgeHooks:
    def test_registered_purge_hooks_include_batch(self) -> None:
        modules = {hook.__module__ for hook in registered_purge_hooks()}

        assert "phonestatus.batch.service" in modules
