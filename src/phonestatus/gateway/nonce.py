"""Replay protection: each signature nonce is accepted once per AccessKey within the window.

The window equals the accepted timestamp skew, so a request old enough for its
nonce to have expired is already rejected as ``InvalidTimeStamp.Expired``.
Both stores fail closed: when the store fails, the request is rejected
(``NonceStoreUnavailable`` becomes HTTP 503) rather than risking a replay.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from phonestatus.clock import Clock


class NonceStoreUnavailable(Exception):
    """The nonce store could not record a nonce, so the request cannot be proven fresh."""


class NonceStore(Protocol):
    async def claim(self, access_key_id: str, nonce: str, *, window_seconds: int) -> bool:
        """Record a nonce; return True the first time it is seen, False for a replay.

        Raises ``NonceStoreUnavailable`` when the store fails.
        """
        ...

    async def aclose(self) -> None: ...


class MemoryNonceStore:
    """Nonces in this process only: correct for a single ``phonestatus serve`` worker.

    Every claim gets the same lifetime, so expiries arrive in claim order: a
    queue in that order lets each claim drop the expired front entries,
    instead of scanning every live nonce now and then.
    """

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._expiry: dict[tuple[str, str], datetime] = {}
        self._order: deque[tuple[datetime, tuple[str, str]]] = deque()

    async def claim(self, access_key_id: str, nonce: str, *, window_seconds: int) -> bool:
        now = self._clock.now()
        self._prune(now)
        key = (access_key_id, nonce)
        expiry = self._expiry.get(key)
        if expiry is not None and expiry > now:
            return False
        expiry = now + timedelta(seconds=window_seconds)
        self._expiry[key] = expiry
        self._order.append((expiry, key))
        return True

    def _prune(self, now: datetime) -> None:
        order, entries = self._order, self._expiry
        while order and order[0][0] <= now:
            expiry, key = order.popleft()
            # A key claimed again after it expired has a newer entry further back.
            if entries.get(key) == expiry:
                del entries[key]

    async def aclose(self) -> None:
        self._expiry.clear()
        self._order.clear()


class RedisNonceStore:
    """Nonces shared by every process: ``SET key 1 NX EX window`` is atomic on the Redis server."""

    def __init__(self, url: str, *, key_prefix: str = "phonestatus:nonce:") -> None:
        self._client = redis_asyncio.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = key_prefix

    async def claim(self, access_key_id: str, nonce: str, *, window_seconds: int) -> bool:
        key = f"{self._prefix}{access_key_id}:{nonce}"
        try:
            created = await self._client.set(key, b"1", nx=True, ex=window_seconds)
        except (RedisError, OSError) as exc:
            raise NonceStoreUnavailable(f"Redis nonce store failed: {exc}") from exc
        return bool(created)

    async def aclose(self) -> None:
        await self._client.aclose()
