"""Packages (套餐包): the catalog, purchases and remaining quota.

A package takes effect on purchase and lapses at ``expires_at``. Metering
uses the usable package that expires first (``metering._claim_package_unit``)
before charging the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.billing.errors import (
    InsufficientBalance,
    InvalidAmount,
    PackageNotFound,
    PackageTypeNotFound,
)
from phonestatus.billing.ledger import balance_li, lock_account, post_entry
from phonestatus.billing.models import LedgerKind, Package, PackageType, PaymentChannel, new_id
from phonestatus.clock import Clock


@dataclass(frozen=True, slots=True)
class QuotaSummary:
    """Usable quota across an account's packages at one moment."""

    remaining: int
    packages: int
    next_expiry: datetime | None


async def list_package_types(
    session: AsyncSession, *, include_inactive: bool = False
) -> list[PackageType]:
    statement = select(PackageType).order_by(PackageType.quota, PackageType.code)
    if not include_inactive:
        statement = statement.where(PackageType.active.is_(True))
    return list((await session.scalars(statement)).all())


async def set_package_type(
    session: AsyncSession,
    code: str,
    *,
    name: str,
    quota: int,
    price_li: int,
    validity_days: int,
    active: bool = True,
) -> PackageType:
    """Create or change a catalog entry; bought packages keep the terms they were bought with."""
    if quota <= 0:
        raise ValueError(f"quota must be a positive number of queries, got {quota}")
    if price_li < 0:
        raise InvalidAmount(price_li, "the price must not be negative")
    if validity_days <= 0:
        raise ValueError(f"validity_days must be positive, got {validity_days}")

    package_type = await session.get(PackageType, code)
    if package_type is None:
        package_type = PackageType(code=code)
        session.add(package_type)
    package_type.name = name
    package_type.quota = quota
    package_type.price_li = price_li
    package_type.validity_days = validity_days
    package_type.active = active
    await session.flush()
    return package_type


async def buy_package(
    session: AsyncSession,
    account_id: str,
    type_code: str,
    *,
    channel: str = PaymentChannel.BALANCE,
    reference: str | None = None,
    clock: Clock,
) -> Package:
    """Buy a package, paid from the balance or through a third-party channel with its reference.

    Paying from the balance debits the ledger and raises
    ``InsufficientBalance`` when the balance does not cover the price.
    """
    package_type = await session.get(PackageType, type_code)
    if package_type is None or not package_type.active:
        raise PackageTypeNotFound(type_code)
    channel = PaymentChannel(channel).value
    if channel != PaymentChannel.BALANCE and not reference:
        raise ValueError(f"a package paid through {channel!r} needs the payment reference")

    await lock_account(session, account_id, clock=clock)
    now = clock.now()
    package = Package(
        id=new_id("pkg"),
        account_id=account_id,
        type_code=package_type.code,
        quota=package_type.quota,
        remaining=package_type.quota,
        price_li=package_type.price_li,
        payment_channel=channel,
        payment_reference=reference,
        purchased_at=now,
        expires_at=now + timedelta(days=package_type.validity_days),
    )

    if channel == PaymentChannel.BALANCE:
        available = await balance_li(session, account_id)
        if available < package_type.price_li:
            raise InsufficientBalance(available, package_type.price_li)
        await post_entry(
            session,
            account_id,
            kind=LedgerKind.PACKAGE_PURCHASE,
            amount_li=-package_type.price_li,
            reference=package.id,
            channel=PaymentChannel.BALANCE.value,
            clock=clock,
        )

    session.add(package)
    await session.flush()
    return package


async def get_package(session: AsyncSession, package_id: str) -> Package:
    package = await session.get(Package, package_id)
    if package is None:
        raise PackageNotFound(package_id)
    return package


async def list_packages(session: AsyncSession, account_id: str) -> list[Package]:
    statement = (
        select(Package)
        .where(Package.account_id == account_id)
        .order_by(Package.purchased_at, Package.id)
    )
    return list((await session.scalars(statement)).all())


async def quota_summary(session: AsyncSession, account_id: str, *, clock: Clock) -> QuotaSummary:
    """Return the remaining quota (余量) of the account's usable packages now."""
    now = clock.now()
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(Package.remaining), 0),
                func.count(Package.id),
                func.min(Package.expires_at),
            ).where(
                Package.account_id == account_id,
                Package.remaining > 0,
                Package.refunded_at.is_(None),
                Package.expires_at > now,
            )
        )
    ).one()
    return QuotaSummary(remaining=int(row[0]), packages=int(row[1]), next_expiry=row[2])
