"""What the guards read per request, cached for a short time per process.

Every request needs its AccessKey (with the decrypted secret), the account's
standing (feature enabled, billing block, rate limit override) and its AuthCode
check. These change rarely, so each result is kept for ``ttl_seconds``
(``PHONESTATUS_GATEWAY_CACHE_SECONDS``). A change made in the console or the
CLI, such as disabling a key, suspending an account for arrears or revoking an
AuthCode, takes effect within that time. A TTL of 0 reads the database on
every request. Unknown AccessKeys are not cached, so a new key works at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

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

    async def access_key(self, access_key_id: str) -> ResolvedAccessKey | None:
        """Return the key with its secret, or None when unknown.

        Raises ``SecretDecryptionFailed`` when the stored secret does not decrypt.
        """
        key = self._keys.get(access_key_id)
        if key is not None:
            return key
        async with self._session_factory() as session:
            key = await resolve_access_key(session, access_key_id, cipher=self._cipher)
        if key is not None:
            self._keys.put(access_key_id, key)
        return key

    async def account(self, account_id: str) -> AccountStanding:
        standing = self._standings.get(account_id)
        if standing is not None:
            return standing
        async with self._session_factory() as session:
            standing = AccountStanding(
                feature_enabled=await is_feature_enabled(session, account_id),
                block_reason=await account_block_reason(session, account_id),
                rate_limit=await session.scalar(
                    sa.select(Account.rate_limit).where(Account.id == account_id)
                ),
            )
        self._standings.put(account_id, standing)
        return standing

    async def auth_code(self, account_id: str, code: str, action: str) -> AuthCodeCheck:
        cache_key = (account_id, code, action)
        result = self._auth_codes.get(cache_key)
        if result is not None:
            return result
        async with self._session_factory() as session:
            try:
                await check_auth_code(session, account_id, code, action)
            except AuthCodeNotFound:
                result = AuthCodeCheck.NOT_FOUND
            except AuthCodeActionMismatch:
                result = AuthCodeCheck.ACTION_MISMATCH
            else:
                result = AuthCodeCheck.VALID
        self._auth_codes.put(cache_key, result)
        return result
