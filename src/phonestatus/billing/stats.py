"""Usage and cost statistics (用量统计, 费用统计) and the month's running estimate.

Periods are UTC days (``YYYY-MM-DD``) or UTC months (``YYYY-MM``).
Costs computed from usage events are estimates at the unit prices in force
when each query ran; the bills (and the month-end invoice) are authoritative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.billing.invoices import month_bounds
from phonestatus.billing.models import Bill, QueryRecord, UsageEvent
from phonestatus.clock import Clock

# TODO: offer Asia/Shanghai days and months beside UTC; all grouping is UTC now.


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: str
    action: str
    status: str | None
    total: int
    billable: int


@dataclass(frozen=True, slots=True)
class CostRow:
    period: str
    action: str
    count: int
    package_count: int
    balance_count: int
    amount_li: int


@dataclass(frozen=True, slots=True)
class MonthlyEstimate:
    """The running month: ``estimated_li`` is unit price × balance-charged count, an estimate."""

    period: str
    billable_count: int
    package_count: int
    balance_count: int
    estimated_li: int
    billed_li: int


def _bucket(session: AsyncSession, column: Any, period: Period) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD" if period is Period.DAY else "YYYY-MM"
        return func.to_char(func.timezone("UTC", column), pattern)
    # SQLite stores the UTC wall time as text, so strftime reads it directly.
    pattern = "%Y-%m-%d" if period is Period.DAY else "%Y-%m"
    return func.strftime(pattern, column)


async def usage_statistics(
    session: AsyncSession,
    account_id: str,
    *,
    start: datetime,
    end: datetime,
    period: Period = Period.DAY,
) -> list[UsageRow]:
    """Count queries in [start, end) per period, action and status."""
    bucket = _bucket(session, QueryRecord.occurred_at, period).label("bucket")
    billable_count = func.sum(case((QueryRecord.billable, 1), else_=0))
    statement = (
        select(
            bucket,
            QueryRecord.action,
            QueryRecord.status,
            func.count(QueryRecord.id),
            billable_count,
        )
        .where(
            QueryRecord.account_id == account_id,
            QueryRecord.occurred_at >= start,
            QueryRecord.occurred_at < end,
        )
        .group_by(bucket, QueryRecord.action, QueryRecord.status)
        .order_by(bucket, QueryRecord.action, QueryRecord.status)
    )
    rows = (await session.execute(statement)).all()
    return [
        UsageRow(
            period=str(row[0]),
            action=row[1],
            status=row[2],
            total=int(row[3]),
            billable=int(row[4] or 0),
        )
        for row in rows
    ]


async def cost_statistics(
    session: AsyncSession,
    account_id: str,
    *,
    start: datetime,
    end: datetime,
    period: Period = Period.DAY,
) -> list[CostRow]:
    """Sum billable queries and their estimated cost in [start, end) per period and action."""
    bucket = _bucket(session, UsageEvent.occurred_at, period).label("bucket")
    statement = (
        select(
            bucket,
            UsageEvent.action,
            func.count(UsageEvent.id),
            func.count(UsageEvent.package_id),
            func.coalesce(func.sum(UsageEvent.unit_price_li), 0),
        )
        .where(
            UsageEvent.account_id == account_id,
            UsageEvent.occurred_at >= start,
            UsageEvent.occurred_at < end,
        )
        .group_by(bucket, UsageEvent.action)
        .order_by(bucket, UsageEvent.action)
    )
    rows = (await session.execute(statement)).all()
    return [
        CostRow(
            period=str(row[0]),
            action=row[1],
            count=int(row[2]),
            package_count=int(row[3]),
            balance_count=int(row[2]) - int(row[3]),
            amount_li=int(row[4]),
        )
        for row in rows
    ]


async def monthly_estimate(
    session: AsyncSession, account_id: str, *, clock: Clock, period: str | None = None
) -> MonthlyEstimate:
    """Return the running cost of a UTC month (default: the current one)."""
    period = period or clock.now().strftime("%Y-%m")
    start, end = month_bounds(period)
    counts = (
        await session.execute(
            select(
                func.count(UsageEvent.id),
                func.count(UsageEvent.package_id),
                func.coalesce(func.sum(UsageEvent.unit_price_li), 0),
            ).where(
                UsageEvent.account_id == account_id,
                UsageEvent.occurred_at >= start,
                UsageEvent.occurred_at < end,
            )
        )
    ).one()
    billed = await session.scalar(
        select(func.coalesce(func.sum(Bill.charged_li), 0)).where(
            Bill.account_id == account_id, Bill.cycle_start >= start, Bill.cycle_start < end
        )
    )
    return MonthlyEstimate(
        period=period,
        billable_count=int(counts[0]),
        package_count=int(counts[1]),
        balance_count=int(counts[0]) - int(counts[1]),
        estimated_li=int(counts[2]),
        billed_li=int(billed or 0),
    )
