"""Guard reads per request (AccessKey, account standing, AuthCode), cached briefly per process.

Every request needs its AccessKey (with the decrypted secret), the account's
standing (feature enabled, billing block, rate limit override) and its AuthCode
check. These change rarely, so each result is kept for ``ttl_seconds``
(``PHONESTATUS_GATEWAY_CACHE_SECONDS``). A change made in the console or the
CLI, such as disabling a key, suspending an account for arrears or revoking an
AuthCode, takes effect within that time. A TTL of 0 reads the database on
every request, except that concurrent requests for the same key share one
read. Unknown AccessKeys are not cached, so a new key works at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.accounts.errors import AuthCodeActionMismatch, AuthCodeNotFound
from phonestatus.accounts.models import Account
from phonestatus.accounts.service import (
    ResolvedAccessKey,
    check_auth_code,
    is_feature_enabled,
    resolve_access_key,
)
from phonestatus.billing import BlockReason, account_block_reason

MAX_ENTRIES = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A dict whose entries expire ``ttl_seconds`` after they were stored (monotonic clock)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self._ttl_seconds <= 0:
            return
        if len(self._entries) >= self._max_entries:
            # Expired and live entries go together: the next requests refill what they use.
            self._entries.clear()
        self._entries[key] = (self._monotonic() + self._ttl_seconds, value)


@dataclass(frozen=True, slots=True)
class AccountStanding:
    feature_enabled: bool
    block_reason: BlockReason | None
    rate_limit: str | None


class AuthCodeCheck(StrEnum):
    VALID = "valid"
    NOT_FOUND = "not_found"
    ACTION_MISMATCH = "action_mismatch"


class StandingReader:
    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        cipher: SecretCipher,
        ttl_seconds: float,
    ) -> None:
        self._session_factory = session_factory
        self._cipher = cipher
        self._keys: TtlCache[str, ResolvedAccessKey] = TtlCache(ttl_seconds)
        self._standings: TtlCache[str, AccountStanding] = TtlCache(ttl_seconds)
        self._auth_codes: TtlCache[tuple[str, str, str], AuthCodeCheck] = TtlCache(ttl_seconds)
        self._in_flight: dict[tuple[int, Hashable], asyncio.Future[Any]] = {}

    async def access_key(self, access_key_id: str) -> ResolvedAccessKey | None:
        """Return the key with its secret, or None when unknown.

        Raises ``SecretDecryptionFailed`` when the stored secret does not decrypt.
        """

        async def load() -> ResolvedAccessKey | None:
            async with self._session_factory() as session:
                return await resolve_access_key(session, access_key_id, cipher=self._cipher)

        return await self._read_through(self._keys, access_key_id, load)

    async def account(self, account_id: str) -> AccountStanding:
        async def load() -> AccountStanding:
            async with self._session_factory() as session:
                return AccountStanding(
                    feature_enabled=await is_feature_enabled(session, account_id),
                    block_reason=await account_block_reason(session, account_id),
                    rate_limit=await session.scalar(
                        sa.select(Account.rate_limit).where(Account.id == account_id)
                    ),
                )

        standing = await self._read_through(self._standings, account_id, load)
        assert standing is not None
        return standing

    async def auth_code(self, account_id: str, code: str, action: str) -> AuthCodeCheck:
        async def load() -> AuthCodeCheck:
            async with self._session_factory() as session:
                try:
                    await check_auth_code(session, account_id, code, action)
                except AuthCodeNotFound:
                    return AuthCodeCheck.NOT_FOUND
                except AuthCodeActionMismatch:
                    return AuthCodeCheck.ACTION_MISMATCH
                return AuthCodeCheck.VALID

        result = await self._read_through(self._auth_codes, (account_id, code, action), load)
        assert result is not None
        return result

    async def _read_through(
        self,
        cache: TtlCache[Any, V],
        key: Hashable,
        load: Callable[[], Awaitable[V | None]],
    ) -> V | None:
        """Return the cached value, or load it once for every concurrent caller and cache it.

        Without sharing, a burst of requests for one account would all miss at
        the same moment and each read the database.
        """
        value = cache.get(key)
        if value is not None:
            return value

        flight_key = (id(cache), key)
        flight = self._in_flight.get(flight_key)
        if flight is None:
            flight = asyncio.ensure_future(load())
            self._in_flight[flight_key] = flight
            flight.add_done_callback(lambda _: self._in_flight.pop(flight_key, None))
        # shield: a caller that is cancelled must not cancel the read others wait for.
        value = await asyncio.shield(flight)
        if value is not None:
            cache.put(key, value)
        return value
