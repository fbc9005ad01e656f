"""The optional result cache: answered lookups kept for a time that depends on the status.

Only answered lookups are cached; refusals and failures never are, and
UNKNOWN is kept for 0 seconds by default. Keys are SHA-256 hashes of the
scene and subject, so Redis never stores a plain phone number.

Failure mode: the Redis cache fails open. A Redis error counts as a miss
(or a skipped store) and is logged as ``result_cache_failed``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from phonestatus.clock import Clock
from phonestatus.detection.protocols import OutcomeKind, ProbeOutcome
from phonestatus.detection.scenes import NetworkState
from phonestatus.numbers import Carrier, PhoneStatus

logger = structlog.get_logger(__name__)

REDIS_KEY_PREFIX = "phonestatus:result:"
DEFAULT_MAX_ENTRIES = 100_000
# Seconds a cached outcome stays valid, by its REAL-scene status. Allocation facts
# change rarely, reachability changes by the minute.
DEFAULT_TTL_SECONDS: dict[PhoneStatus, int] = {
    PhoneStatus.NORMAL: 6 * 3600,
    PhoneStatus.SHUTDOWN: 6 * 3600,
    PhoneStatus.NOT_EXIST: 24 * 3600,
    PhoneStatus.DEFECT: 24 * 3600,
    PhoneStatus.POWER_OFF: 600,
    PhoneStatus.SUSPECTED_POWER_OFF: 600,
    PhoneStatus.BUSY: 60,
    PhoneStatus.UNKNOWN: 0,
}


def parse_ttls(value: str) -> dict[PhoneStatus, int]:
    """Parse ``NORMAL=3600,POWER_OFF=60`` (seconds); statuses left out keep their default."""
    ttls = dict(DEFAULT_TTL_SECONDS)
    for part in filter(None, (piece.strip() for piece in value.split(","))):
        name, _, seconds = part.partition("=")
        try:
            ttls[PhoneStatus(name.strip().upper())] = int(seconds)
        except ValueError as exc:
            raise ValueError(
                f"invalid result cache TTL entry {part!r}: expected <STATUS>=<seconds>"
            ) from exc
    return ttls


def cache_key(scene: str, subject_key: str) -> str:
    return hashlib.sha256(f"{scene}|{subject_key}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedOutcome:
    outcome: ProbeOutcome
    observed_at: datetime


class ResultCache(Protocol):
    """Store of outcomes by key; ``get`` returns None for a miss or an expired entry."""

    async def get(self, key: str) -> CachedOutcome | None: ...

    async def set(self, key: str, entry: CachedOutcome, ttl_seconds: int) -> None: ...

    async def aclose(self) -> None: ...


class MemoryResultCache:
    """Process-local cache, least recently used entries evicted beyond ``max_entries``."""

    def __init__(self, *, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[datetime, CachedOutcome]] = OrderedDict()

    async def get(self, key: str) -> CachedOutcome | None:
        item = self._entries.get(key)
        if item is None:
            return None
        expires_at, entry = item
        if self._clock.now() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def set(self, key: str, entry: CachedOutcome, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        self._entries[key] = (self._clock.now() + timedelta(seconds=ttl_seconds), entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        self._entries.clear()


def _encode(entry: CachedOutcome) -> str:
    payload: dict[str, Any] = asdict(entry.outcome)
    payload["observed_at"] = entry.observed_at.isoformat()
    return json.dumps(payload)


def _decode(text: str | bytes) -> CachedOutcome:
    payload = json.loads(text)
    observed_at = datetime.fromisoformat(payload.pop("observed_at"))
    enums = {
        "kind": OutcomeKind,
        "state": NetworkState,
        "carrier": Carrier,
        "basic_carrier": Carrier,
    }
    for field, enum in enums.items():
        if payload.get(field) is not None:
            payload[field] = enum(payload[field])
    return CachedOutcome(outcome=ProbeOutcome(**payload), observed_at=observed_at)


class RedisResultCache:
    """Cache shared by every process through Redis, expiry by Redis TTL."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> RedisResultCache:
        return cls(Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0))

    async def get(self, key: str) -> CachedOutcome | None:
        try:
            raw = await self._client.get(REDIS_KEY_PREFIX + key)
        except RedisError as exc:
            logger.warning("result_cache_failed", operation="get", error=repr(exc))
            return None
        if raw is None:
            return None
        return _decode(raw)

    async def set(self, key: str, entry: CachedOutcome, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        try:
            await self._client.set(REDIS_KEY_PREFIX + key, _encode(entry), ex=ttl_seconds)
        except RedisError as exc:
            logger.warning("result_cache_failed", operation="set", error=repr(exc))

    async def aclose(self) -> None:
        await self._client.aclose()
