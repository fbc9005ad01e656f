"""Billing cycles and settlement: close each cycle, bill it and debit the balance.

Cycles are fixed windows (hourly by default) aligned to the Unix epoch in
UTC. ``settle_due_cycles`` bills every finished cycle, one transaction per
account, then purges accounts whose arrears passed 7 days and delivers queued
notifications. It runs periodically inside ``serve`` (``settlement_loop``)
and from ``phonestatus bill run``.

Several processes may run it at once: each bill claims its usage events with
``UPDATE ... WHERE bill_id IS NULL`` under the account lock, so an event is
billed exactly once. A query that commits after its cycle was settled is
billed by the next run in an extra bill for the same cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.ledger import (
    apply_balance_state,
    balance_li,
    lock_account,
    post_entry,
)
from phonestatus.billing.models import (
    Bill,
    BillingAccount,
    BillLine,
    LedgerEntry,
    LedgerKind,
    UsageEvent,
    new_id,
)
from phonestatus.billing.money import format_cny, parse_cny, round_half_up_to_fen
from phonestatus.billing.notify import deliver_pending, notifier_from_settings, queue_notification
from phonestatus.billing.protocols import Notifier
from phonestatus.billing.purge import ARREARS_PURGE_AFTER, PurgeHook, purge_account
from phonestatus.clock import Clock
from phonestatus.settings import Settings

log = structlog.get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_CYCLE = timedelta(hours=1)
DEFAULT_LOW_BALANCE_LI = 10_000


@dataclass
class SettlementReport:
    bills: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    failed_accounts: list[str] = field(default_factory=list)
    notifications_sent: int = 0


def cycle_start(moment: datetime, cycle: timedelta = DEFAULT_CYCLE) -> datetime:
    """Return the start of the cycle that contains ``moment``."""
    elapsed = moment - EPOCH
    return EPOCH + cycle * (elapsed // cycle)


async def settle_due_cycles(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    cycle: timedelta = DEFAULT_CYCLE,
    grace: timedelta = timedelta(0),
    until: datetime | None = None,
    low_balance_li: int = DEFAULT_LOW_BALANCE_LI,
    notifier: Notifier | None = None,
    purge_hooks: Iterable[PurgeHook] = (),
) -> SettlementReport:
    """Bill every cycle that ended by ``until`` (default: now minus ``grace``), purge, notify.

    ``until`` later than now is capped at now, so an unfinished cycle is never
    billed. A failure in one account is logged and does not stop the others.
    """
    now = clock.now()
    limit = min(until, now) if until is not None else now - grace
    cutoff = cycle_start(limit, cycle)
    report = SettlementReport()

    async with session_factory() as session:
        account_ids = (
            await session.scalars(
                select(UsageEvent.account_id)
                .where(UsageEvent.bill_id.is_(None), UsageEvent.occurred_at < cutoff)
                .distinct()
            )
        ).all()

    for account_id in account_ids:
        try:
            async with session_factory() as session:
                bills = await settle_account(
                    session,
                    account_id,
                    cutoff=cutoff,
                    cycle=cycle,
                    clock=clock,
                    low_balance_li=low_balance_li,
                )
                suspended = await _is_in_arrears(session, account_id)
                await session.commit()
        except Exception as exc:
            log.exception("billing.settlement_failed", account_id=account_id, error=str(exc))
            report.failed_accounts.append(account_id)
            continue
        report.bills.extend(bill.id for bill in bills)
        if suspended and bills:
            report.suspended.append(account_id)

    report.purged = await purge_due_accounts(session_factory, clock=clock, hooks=purge_hooks)
    if notifier is not None:
        report.notifications_sent = await deliver_pending(session_factory, notifier, clock=clock)
    if report.bills or report.purged:
        log.info(
            "billing.settled",
            bills=len(report.bills),
            suspended=len(report.suspended),
            purged=len(report.purged),
            cutoff=cutoff.isoformat(),
        )
    return report


async def settle_account(
    session: AsyncSession,
    account_id: str,
    *,
    cutoff: datetime,
    cycle: timedelta = DEFAULT_CYCLE,
    clock: Clock,
    low_balance_li: int = DEFAULT_LOW_BALANCE_LI,
) -> list[Bill]:
    """Bill the account's unbilled usage before ``cutoff``, one bill per cycle; never commits."""
    billing = await lock_account(session, account_id, clock=clock)
    if billing.purged_at is not None:
        return []

    bills: list[Bill] = []
    while True:
        first = await session.scalar(
            select(func.min(UsageEvent.occurred_at)).where(
                UsageEvent.account_id == account_id,
                UsageEvent.bill_id.is_(None),
                UsageEvent.occurred_at < cutoff,
            )
        )
        if first is None:
            break
        start = cycle_start(first, cycle)
        bill = await _bill_cycle(session, account_id, start, start + cycle, clock=clock)
        bills.append(bill)
    if not bills:
        return bills

    balance = await balance_li(session, account_id)
    await apply_balance_state(session, billing, balance, clock=clock)
    if 0 <= balance < low_balance_li:
        await _queue_low_balance(session, account_id, balance, clock=clock)
    return bills


async def _bill_cycle(
    session: AsyncSession, account_id: str, start: datetime, end: datetime, *, clock: Clock
) -> Bill:
    bill = Bill(
        id=new_id("bill"),
        account_id=account_id,
        cycle_start=start,
        cycle_end=end,
        query_count=0,
        amount_li=0,
        charged_li=0,
        created_at=clock.now(),
    )
    session.add(bill)
    await session.flush()

    await session.execute(
        update(UsageEvent)
        .where(
            UsageEvent.account_id == account_id,
            UsageEvent.bill_id.is_(None),
            UsageEvent.occurred_at >= start,
            UsageEvent.occurred_at < end,
        )
        .values(bill_id=bill.id)
        .execution_options(synchronize_session=False)
    )
    rows = (
        await session.execute(
            select(
                UsageEvent.action,
                func.count(UsageEvent.id),
                func.count(UsageEvent.package_id),
                func.sum(UsageEvent.unit_price_li),
            )
            .where(UsageEvent.bill_id == bill.id)
            .group_by(UsageEvent.action)
            .order_by(UsageEvent.action)
        )
    ).all()

    for action, count, package_count, amount in rows:
        session.add(
            BillLine(
                bill_id=bill.id,
                action=action,
                count=int(count),
                package_count=int(package_count),
                balance_count=int(count) - int(package_count),
                amount_li=int(amount or 0),
            )
        )
        bill.query_count += int(count)
        bill.amount_li += int(amount or 0)
    bill.charged_li = round_half_up_to_fen(bill.amount_li)

    if bill.charged_li:
        await post_entry(
            session,
            account_id,
            kind=LedgerKind.BILL,
            amount_li=-bill.charged_li,
            reference=bill.id,
            clock=clock,
        )
    await session.flush()
    return bill


async def _queue_low_balance(
    session: AsyncSession, account_id: str, balance: int, *, clock: Clock
) -> None:
    # One notice per recharge: the key names the latest recharge entry.
    last_recharge = await session.scalar(
        select(func.max(LedgerEntry.id)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.kind == LedgerKind.RECHARGE.value
        )
    )
    await queue_notification(
        session,
        account_id,
        kind="low_balance",
        dedupe_key=f"low_balance:{account_id}:{last_recharge or 0}",
        subject="phonestatus: low balance",
        body=(
            f"The balance of account {account_id} is {format_cny(balance)} CNY. "
            "Recharge to avoid arrears, which suspend queries."
        ),
        clock=clock,
    )


async def _is_in_arrears(session: AsyncSession, account_id: str) -> bool:
    billing = await session.get(BillingAccount, account_id)
    return billing is not None and billing.arrears_since is not None


async def purge_due_accounts(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    hooks: Iterable[PurgeHook] = (),
) -> list[str]:
    """Purge every account in arrears for 7 days or more; return the purged ids."""
    deadline = clock.now() - ARREARS_PURGE_AFTER
    async with session_factory() as session:
        due = (
            await session.scalars(
                select(BillingAccount.account_id).where(
                    BillingAccount.purged_at.is_(None),
                    BillingAccount.arrears_since <= deadline,
                )
            )
        ).all()

    purged: list[str] = []
    hooks = tuple(hooks)
    for account_id in due:
        try:
            async with session_factory() as session:
                if await purge_account(session, account_id, clock=clock, hooks=hooks):
                    purged.append(account_id)
                await session.commit()
        except Exception as exc:
            log.exception("billing.purge_failed", account_id=account_id, error=str(exc))
    return purged


class SettlementOptions(TypedDict):
    cycle: timedelta
    grace: timedelta
    low_balance_li: int
    notifier: Notifier


def settlement_options(settings: Settings) -> SettlementOptions:
    """Return the ``settle_due_cycles`` keyword arguments the settings configure."""
    return SettlementOptions(
        cycle=timedelta(minutes=settings.billing_cycle_minutes),
        grace=timedelta(seconds=settings.billing_settlement_grace_seconds),
        low_balance_li=parse_cny(settings.billing_low_balance_cny),
        notifier=notifier_from_settings(settings),
    )


async def settlement_loop(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    clock: Clock,
) -> None:
    """Run ``settle_due_cycles`` every ``settlement_interval_seconds`` until cancelled."""
    options = settlement_options(settings)
    while True:
        try:
            await settle_due_cycles(session_factory, clock=clock, **options)
        except Exception as exc:
            # Fail closed and retry later: unbilled usage stays unbilled, never lost.
            log.exception("billing.settlement_run_failed", error=str(exc))
        await asyncio.sleep(settings.settlement_interval_seconds)


def start_settlement(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, *, clock: Clock
) -> Callable[[], Awaitable[None]]:
    """Start ``settlement_loop`` as a background task; return the coroutine function that stops it.

    With ``billing_settlement_enabled`` off nothing starts and the stop does nothing.
    """
    if not settings.billing_settlement_enabled:

        async def nothing_to_stop() -> None:
            return None

        return nothing_to_stop

    task = asyncio.create_task(
        settlement_loop(session_factory, settings, clock=clock), name="billing-settlement"
    )

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
