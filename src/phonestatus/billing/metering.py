"""Metering: record each completed query and charge it, inside the caller's unit of work.

The gateway and batch workers call ``record_query`` in the same transaction
that answers the query, so the query record, its usage event and its package
effect commit together or not at all. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.errors import BillingAccountNotFound, QueryAlreadyRecorded
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.billing.prices import PriceList

# On PostgreSQL two transactions can pick the same package and the loser finds
# it exhausted; it then looks again, at most this many times.
PACKAGE_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
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

    values: dict[str, Any] = {
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
    record_id = await _insert_record(session, values)
    if record_id is None:
        raise QueryAlreadyRecorded(usage.request_id)

    if usage.billable:
        package_id = await _claim_package_unit(session, usage.account_id, usage.occurred_at)
        unit_price_li = 0 if package_id is not None else prices.unit_price_li(usage.action)
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

    The decrement is a single UPDATE guarded by ``remaining > 0``, so quota
    never goes negative: on PostgreSQL the row lock makes a concurrent
    transaction re-check the guard, and SQLite runs one writer at a time.
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
    # SQLite runs one writer at a time, so an empty result there means no quota.
    attempts = PACKAGE_CLAIM_ATTEMPTS if session.get_bind().dialect.name == "postgresql" else 1
    for _ in range(attempts):
        package_id = (await session.execute(claim)).scalar_one_or_none()
        if package_id is not None:
            return str(package_id)
        if attempts == 1 or not await session.scalar(select(exists().where(*conditions))):
            return None
    return None
