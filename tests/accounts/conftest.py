"""Fixtures for the accounts tests: a session per test, a cipher and a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.clock import FrozenClock

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def cipher() -> SecretCipher:
    return SecretCipher(b"test-secret-key-for-accounts-tests")


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed, as the service's callers do."""
    async with session_factory() as session:
        yield session
