"""Factories for accounts rows used across tests."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts import service
from phonestatus.accounts.models import Account
from phonestatus.clock import Clock


async def make_account(
    session: AsyncSession,
    *,
    clock: Clock,
    verified: bool = True,
    feature: bool = False,
    name: str | None = None,
) -> Account:
    account = await service.create_account(
        session,
        name=name or f"Test account {uuid.uuid4().hex[:6]}",
        email="ops@example.com",
        phone="13800138000",
        verified=verified,
        clock=clock,
    )
    if feature:
        await service.enable_feature(session, account.id, accepted_by="tester", clock=clock)
    await session.commit()
    return account
