"""Metering: record each completed query and charge it, inside the caller's unit of work.

The gateway and batch workers call ``record_query`` in the same transaction
that completes the query, so the query record, its usage event and its package
effect commit together or not at all. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.errors import BillingAccountNotFound, QueryAlreadyRecorded
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.billing.prices import PriceList
from phonestatus.storage.db import UTCDateTime

# On PostgreSQL two transactions can pick the same package and the loser finds
# it exhausted. It then tries again, at most this many times.
PACKAGE_CLAIM_ATTEMPTS = 5


# Not frozen: one is built per query on the gateway's and batch workers' hot
# paths, and a frozen dataclass's __init__ costs about half as much again.
# Treat it as read-only.
@dataclass(slots=True)
class QueryUsage:
    """One completed query, as the gateway or a batch worker reports it."""

    account_id: str
    action: str  # wire action name, e.g. "PhoneNumberStatusForReal"
    request_id: str  # RequestId, or "<batch job id>:<row>" for batch rows
    code: str  # response Code ("OK", "OperatorLimit", ...)
    status: str | None  # scene wire status, None when there is no Data
    billable: bool  # computed by the caller with numbers.statuses.is_billable
    masked_number: str | None  # 138****8000 or a digest prefix, never the full number
    carrier: str | None
    connector: str | None
    latency_ms: int | None
    source: str  # "api" | "console" | "batch"
    occurred_at: datetime  # aware UTC


class BlockReason(StrEnum):
    ARREARS = "arrears"
    PURGED = "purged"


def record_values(usage: QueryUsage) -> dict[str, Any]:
    """Return the query record's column values for ``usage``."""
    return {
        "account_id": usage.account_id,
        "request_id": usage.request_id,
        "action": usage.action,
        "code": usage.code,
        "status": usage.status,
        "billable": usage.billable,
        "masked_number": usage.masked_number,
        "carrier": usage.carrier,
        "connector": usage.connector,
        "latency_ms": usage.latency_ms,
        "source": usage.source,
        "occurred_at": usage.occurred_at,
    }


async def record_query(
    session: AsyncSession, usage: QueryUsage, *, prices: PriceList
) -> QueryRecord:
    """Insert the query record and, when billable, charge it; never commits.

    A billable query consumes one unit from the account's usable package that
    expires first. Without package quota it becomes a usage event at the
    action's unit price, and the balance is debited when its cycle is settled.
    Raises ``QueryAlreadyRecorded`` when ``usage.request_id`` was recorded
    before, leaving the transaction usable, so a resumed batch row is never
    charged twice.
    """
    if usage.occurred_at.tzinfo is None:
        raise ValueError(f"occurred_at must be aware UTC, got naive {usage.occurred_at!r}")

    values = record_values(usage)
    record_id = await _insert_record(session, values)
    if record_id is None:
        raise QueryAlreadyRecorded(usage.request_id)

    if usage.billable:
        unit_price_li = prices.unit_price_li(usage.action)
        if session.get_bind().dialect.name == "postgresql":
            await _charge_postgresql(session, record_id, usage, unit_price_li)
        else:
            package_id = await _claim_package_unit(session, usage.account_id, usage.occurred_at)
            await _insert_event(
                session, record_id, usage, package_id, 0 if package_id else unit_price_li
            )

    record = QueryRecord(id=record_id, **values)
    make_transient_to_detached(record)
    session.add(record)
    return record


async def account_block_reason(session: AsyncSession, account_id: str) -> BlockReason | None:
    """Return why the account may not query, or None when it may.

    Fails closed: an unknown account raises ``BillingAccountNotFound``.
    """
    state = await session.scalar(select(Account.state).where(Account.id == account_id))
    if state is None:
        raise BillingAccountNotFound(account_id)
    if state == AccountState.SUSPENDED:
        return BlockReason.ARREARS
    if state == AccountState.PURGED:
        return BlockReason.PURGED
    return None


async def _insert_record(session: AsyncSession, values: dict[str, Any]) -> int | None:
    # ON CONFLICT DO NOTHING keeps a PostgreSQL transaction alive on a duplicate
    # request id, where a failed INSERT would abort it.
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(QueryRecord).on_conflict_do_nothing(
            index_elements=["request_id"]
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(QueryRecord).on_conflict_do_nothing(index_elements=["request_id"])
    else:
        raise NotImplementedError(f"billing supports sqlite and postgresql, not {dialect}")
    result = await session.execute(statement.values(**values).returning(QueryRecord.id))
    return result.scalar_one_or_none()


async def _insert_event(
    session: AsyncSession,
    record_id: int,
    usage: QueryUsage,
    package_id: str | None,
    unit_price_li: int,
) -> None:
    await session.execute(
        insert(UsageEvent).values(
            query_record_id=record_id,
            account_id=usage.account_id,
            action=usage.action,
            package_id=package_id,
            unit_price_li=unit_price_li,
            occurred_at=usage.occurred_at,
        )
    )


# One round trip on PostgreSQL: pick the usable package that expires first,
# take one unit with the `remaining > 0` guard, and insert the usage event,
# charged to the package or at the unit price. When a package was picked but
# a concurrent transaction took its last unit first, nothing is inserted and
# the caller tries again with a fresh snapshot.
_CHARGE_POSTGRESQL = text(
    """
    WITH candidate AS (
        SELECT id FROM billing_packages
        WHERE account_id = :account_id AND remaining > 0 AND refunded_at IS NULL
          AND purchased_at <= :occurred_at AND expires_at > :occurred_at
        ORDER BY expires_at, id
        LIMIT 1
    ),
    claimed AS (
        UPDATE billing_packages SET remaining = billing_packages.remaining - 1
        FROM candidate
        WHERE billing_packages.id = candidate.id AND billing_packages.remaining > 0
        RETURNING billing_packages.id
    ),
    event AS (
        INSERT INTO billing_usage_events
            (query_record_id, account_id, action, package_id, unit_price_li, occurred_at)
        SELECT :record_id, :account_id, :action, (SELECT id FROM claimed),
               CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN 0 ELSE :unit_price_li END,
               :occurred_at
        WHERE EXISTS (SELECT 1 FROM claimed) OR NOT EXISTS (SELECT 1 FROM candidate)
        RETURNING package_id
    )
    SELECT count(*) FROM event
    """
).bindparams(
    bindparam("record_id", type_=BigInteger()),
    bindparam("unit_price_li", type_=BigInteger()),
    bindparam("occurred_at", type_=UTCDateTime()),
)


async def _charge_postgresql(
    session: AsyncSession, record_id: int, usage: QueryUsage, unit_price_li: int
) -> None:
    parameters = {
        "record_id": record_id,
        "account_id": usage.account_id,
        "action": usage.action,
        "unit_price_li": unit_price_li,
        "occurred_at": usage.occurred_at,
    }
    for _ in range(PACKAGE_CLAIM_ATTEMPTS):
        if await session.scalar(_CHARGE_POSTGRESQL, parameters):
            return
    # NOTE: after repeated lost races the query is charged to the balance even
    # if some package still has quota. It is charged once either way, but not
    # in the package-first order.
    await _insert_event(session, record_id, usage, None, unit_price_li)


def _usable_packages(account_id: str, moment: datetime) -> Any:
    return (
        Package.account_id == account_id,
        Package.remaining > 0,
        Package.refunded_at.is_(None),
        Package.purchased_at <= moment,
        Package.expires_at > moment,
    )


async def _claim_package_unit(
    session: AsyncSession, account_id: str, moment: datetime
) -> str | None:
    """Take one unit from the usable package that expires first; None when none has quota.

    Used on SQLite, where one writer at a time makes the guarded UPDATE enough.
    PostgreSQL takes the path in ``_charge_postgresql``.
    """
    conditions = _usable_packages(account_id, moment)
    first_expiring = (
        select(Package.id)
        .where(*conditions)
        .order_by(Package.expires_at, Package.id)
        .limit(1)
        .scalar_subquery()
    )
    claim = (
        update(Package)
        .where(Package.id == first_expiring, Package.remaining > 0)
        .values(remaining=Package.remaining - 1)
        .returning(Package.id)
        .execution_options(synchronize_session=False)
    )
    package_id = (await session.execute(claim)).scalar_one_or_none()
    return str(package_id) if package_id is not None else None
