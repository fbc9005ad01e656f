"""Package refunds (套餐包退款).

A package is refundable when it is unused and was bought at most 6 calendar
months ago (a purchase at 2026-01-31 10:00 stays refundable through
2026-07-31 10:00). A package paid through a third-party channel at most 3
months ago is refunded to that channel, and the refund is recorded. Any other
refundable package (paid from the balance, or bought 3 to 6 months ago) is
credited to the balance. A
package with an issued, unvoided invoice must have the invoice voided first.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.billing.errors import RefundRefusal, RefundRefused
from phonestatus.billing.ledger import apply_balance_state, balance_li, lock_account, post_entry
from phonestatus.billing.models import (
    Invoice,
    LedgerEntry,
    LedgerKind,
    Package,
    PaymentChannel,
    RefundDestination,
)
from phonestatus.billing.packages import get_package
from phonestatus.clock import Clock

ORIGINAL_CHANNEL_MONTHS = 3
REFUNDABLE_MONTHS = 6


@dataclass(frozen=True, slots=True)
class RefundResult:
    package: Package
    amount_li: int
    destination: RefundDestination
    channel: str
    ledger_entry: LedgerEntry | None


def add_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` plus calendar months, clamping the day to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def refund_refusal(
    package: Package, *, now: datetime, has_open_invoice: bool
) -> RefundRefusal | None:
    """Return why ``package`` cannot be refunded at ``now``, or None when it can."""
    if package.refunded_at is not None:
        return RefundRefusal.ALREADY_REFUNDED
    if package.remaining != package.quota:
        return RefundRefusal.USED
    if now > add_months(package.purchased_at, REFUNDABLE_MONTHS):
        return RefundRefusal.TOO_OLD
    if has_open_invoice:
        return RefundRefusal.INVOICE_ISSUED
    return None


def refund_destination(package: Package, *, now: datetime) -> RefundDestination:
    paid_by_channel = package.payment_channel != PaymentChannel.BALANCE
    recent = now <= add_months(package.purchased_at, ORIGINAL_CHANNEL_MONTHS)
    if paid_by_channel and recent:
        return RefundDestination.ORIGINAL_CHANNEL
    return RefundDestination.BALANCE


async def refund_package(session: AsyncSession, package_id: str, *, clock: Clock) -> RefundResult:
    """Refund an unused package in full, or raise ``RefundRefused`` with the reason."""
    package = await get_package(session, package_id)
    billing = await lock_account(session, package.account_id, clock=clock)
    # Reload under the lock: metering may have used the package meanwhile.
    await session.refresh(package)
    now = clock.now()

    open_invoice = await session.scalar(
        select(Invoice.id).where(Invoice.package_id == package.id, Invoice.voided_at.is_(None))
    )
    refusal = refund_refusal(package, now=now, has_open_invoice=open_invoice is not None)
    if refusal is not None:
        raise RefundRefused(package.id, refusal)

    destination = refund_destination(package, now=now)
    # The guard repeats the "unused" check inside the UPDATE: metering takes
    # no account lock, so a query may have used the package since it was read.
    claimed = await session.execute(
        update(Package)
        .where(
            Package.id == package.id,
            Package.remaining == Package.quota,
            Package.refunded_at.is_(None),
        )
        .values(remaining=0, refunded_at=now, refund_destination=destination.value)
        .returning(Package.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.scalar_one_or_none() is None:
        raise RefundRefused(package.id, RefundRefusal.USED)
    await session.refresh(package)

    entry: LedgerEntry | None = None
    if destination is RefundDestination.BALANCE:
        entry = await post_entry(
            session,
            package.account_id,
            kind=LedgerKind.REFUND,
            amount_li=package.price_li,
            reference=package.id,
            channel=PaymentChannel.BALANCE.value,
            memo=f"refund of package {package.id} ({package.payment_channel})",
            clock=clock,
        )
        balance = await balance_li(session, package.account_id)
        await apply_balance_state(session, billing, balance, clock=clock)
    await session.flush()
    return RefundResult(
        package=package,
        amount_li=package.price_li,
        destination=destination,
        channel=package.payment_channel if entry is None else PaymentChannel.BALANCE.value,
        ledger_entry=entry,
    )
