"""Factories for billing tests: accounts, usage and packages."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts import service as accounts
from phonestatus.billing.ledger import recharge
from phonestatus.billing.metering import QueryUsage, record_query
from phonestatus.billing.models import Package
from phonestatus.billing.packages import buy_package, set_package_type
from phonestatus.billing.payments import OfflinePaymentProvider
from phonestatus.billing.prices import PriceList
from phonestatus.billing.protocols import NotificationMessage
from phonestatus.clock import Clock

FOR_REAL = "PhoneNumberStatusForReal"
_sequence = itertools.count()


def usage(
    account_id: str,
    *,
    at: datetime,
    billable: bool = True,
    action: str = FOR_REAL,
    code: str = "OK",
    status: str | None = "NORMAL",
    request_id: str | None = None,
    source: str = "api",
) -> QueryUsage:
    return QueryUsage(
        account_id=account_id,
        action=action,
        request_id=request_id or f"req-{uuid.uuid4()}",
        code=code,
        status=status,
        billable=billable,
        masked_number="138****8000",
        carrier="CMCC",
        connector="simulated",
        latency_ms=5,
        source=source,
        occurred_at=at,
    )


async def make_account(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    clock: Clock,
    balance_li: int = 0,
    email: str | None = "billing@example.com",
) -> str:
    async with session_factory() as session:
        account = await accounts.create_account(
            session,
            name=f"Billing test {next(_sequence)}",
            email=email,
            phone="13800138000",
            verified=True,
            clock=clock,
        )
        if balance_li:
            await recharge(
                session,
                account.id,
                balance_li,
                provider=OfflinePaymentProvider(),
                channel="offline",
                reference=None,
                clock=clock,
            )
        await session.commit()
        return account.id


async def make_package(
    session_factory: async_sessionmaker[AsyncSession],
    account_id: str,
    *,
    clock: Clock,
    quota: int,
    price_li: int = 0,
    validity_days: int = 30,
    channel: str = "alipay",
    reference: str | None = "2026031022001",
) -> Package:
    code = f"test-{quota}-{price_li}-{validity_days}"
    async with session_factory() as session:
        await set_package_type(
            session,
            code,
            name=f"{quota} queries",
            quota=quota,
            price_li=price_li,
            validity_days=validity_days,
        )
        package = await buy_package(
            session,
            account_id,
            code,
            channel=channel,
            reference=reference if channel != "balance" else None,
            clock=clock,
        )
        await session.commit()
        return package


class RecordingNotifier:
    """A notifier that keeps every message it is asked to send."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[NotificationMessage] = []
        self.fail = fail

    async def send(self, message: NotificationMessage) -> None:
        if self.fail:
            raise ConnectionError("channel is down")
        self.sent.append(message)

    def kinds(self, account_id: str) -> list[str]:
        return [message.kind for message in self.sent if message.account_id == account_id]


async def record_many(
    session_factory: async_sessionmaker[AsyncSession],
    account_id: str,
    *,
    at: datetime,
    count: int,
    prices: PriceList | None = None,
    action: str = FOR_REAL,
) -> None:
    async with session_factory() as session:
        for _ in range(count):
            await record_query(
                session, usage(account_id, at=at, action=action), prices=prices or PriceList()
            )
        await session.commit()
