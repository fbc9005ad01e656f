"""Invoices: issued for a paid package or for one month's bills, and voided (退票) instead of deleted."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.billing.errors import InvoiceNotFound, InvoiceRefused
from phonestatus.billing.ledger import lock_account
from phonestatus.billing.models import Bill, Invoice, InvoiceKind, new_id
from phonestatus.billing.packages import get_package
from phonestatus.clock import Clock

_PERIOD_PATTERN = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a ``YYYY-MM`` period; raises ``ValueError``."""
    match = _PERIOD_PATTERN.fullmatch(period)
    if match is None:
        raise ValueError(f"invalid month {period!r}: expected YYYY-MM, e.g. 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


async def issue_package_invoice(session: AsyncSession, package_id: str, *, clock: Clock) -> Invoice:
    """Issue an invoice for a package; raise ``InvoiceRefused`` if it is refunded, free or already invoiced."""
    package = await get_package(session, package_id)
    await lock_account(session, package.account_id, clock=clock)
    if package.refunded_at is not None:
        raise InvoiceRefused(f"package {package.id!r} was refunded")
    if package.price_li <= 0:
        raise InvoiceRefused(f"package {package.id!r} was free")
    existing = await session.scalar(
        select(Invoice.id).where(Invoice.package_id == package.id, Invoice.voided_at.is_(None))
    )
    if existing is not None:
        raise InvoiceRefused(f"package {package.id!r} already has invoice {existing!r}")

    invoice = Invoice(
        id=new_id("inv"),
        account_id=package.account_id,
        kind=InvoiceKind.PACKAGE.value,
        package_id=package.id,
        amount_li=package.price_li,
        issued_at=clock.now(),
    )
    session.add(invoice)
    await session.flush()
    return invoice


async def issue_month_invoice(
    session: AsyncSession, account_id: str, period: str, *, clock: Clock
) -> Invoice:
    """Issue an invoice for the bills of a finished UTC month (``YYYY-MM``)."""
    start, end = month_bounds(period)
    if end > clock.now():
        raise InvoiceRefused(f"month {period} has not ended; the month-end bill is not final")
    await lock_account(session, account_id, clock=clock)
    existing = await session.scalar(
        select(Invoice.id).where(
            Invoice.account_id == account_id,
            Invoice.period == period,
            Invoice.voided_at.is_(None),
        )
    )
    if existing is not None:
        raise InvoiceRefused(f"month {period} already has invoice {existing!r}")
    total = await session.scalar(
        select(func.coalesce(func.sum(Bill.charged_li), 0)).where(
            Bill.account_id == account_id, Bill.cycle_start >= start, Bill.cycle_start < end
        )
    )
    if not total:
        raise InvoiceRefused(f"account {account_id!r} has no charges in {period}")

    invoice = Invoice(
        id=new_id("inv"),
        account_id=account_id,
        kind=InvoiceKind.MONTH.value,
        period=period,
        amount_li=int(total),
        issued_at=clock.now(),
    )
    session.add(invoice)
    await session.flush()
    return invoice


async def void_invoice(session: AsyncSession, invoice_id: str, *, clock: Clock) -> Invoice:
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(invoice_id)
    if invoice.voided_at is not None:
        raise InvoiceRefused(f"invoice {invoice_id!r} is already void")
    invoice.voided_at = clock.now()
    await session.flush()
    return invoice


async def list_invoices(session: AsyncSession, account_id: str) -> list[Invoice]:
    statement = select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.issued_at)
    return list((await session.scalars(statement)).all())
