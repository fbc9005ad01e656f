"""Shared rate limits on the ``limits`` package: per account, per number and per carrier.

``RateLimitStorage.from_url`` picks Redis when a URL is configured, so every
process behind a load balancer counts against the same windows, and process
memory otherwise. All limiters use the sliding window counter strategy,
which costs two counters per key in either storage.

Failure mode: every limiter here fails open. When Redis is unreachable a
hit is allowed and ``rate_limit_storage_failed`` is logged: these limits
protect carriers and the platform from bursts, and losing them for the
length of a Redis outage is better than refusing every query.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from phonestatus.numbers import Carrier

logger = structlog.get_logger(__name__)

KEY_PREFIX = "phonestatus:limits"
# A limiter waits this long for Redis before failing open.
REDIS_TIMEOUT_SECONDS = 1.0
DISABLED = "off"


class RateLimitConfigError(ValueError):
    """A rate limit string is not valid ``limits`` notation."""

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value
        super().__init__(
            f"invalid rate limit {name}={value!r}: expected `limits` notation such as "
            f"'5/minute' or '200/second'"
        )


def parse_limit(name: str, value: str) -> RateLimitItem:
    """Parse ``value`` (e.g. ``5/minute``) or raise ``RateLimitConfigError`` naming ``name``."""
    try:
        return parse(value)
    except ValueError as exc:
        raise RateLimitConfigError(name, value) from exc


def parse_carrier_limits(name: str, value: str) -> dict[Carrier, RateLimitItem]:
    """Parse ``CMCC=1000/second,CUCC=500/second`` into a limit per carrier.

    An empty string means no limit for any carrier; a carrier left out has no limit.
    """
    limits: dict[Carrier, RateLimitItem] = {}
    for part in filter(None, (piece.strip() for piece in value.split(","))):
        code, separator, limit = part.partition("=")
        if not separator or code.strip().upper() not in Carrier.__members__:
            raise RateLimitConfigError(name, value)
        limits[Carrier(code.strip().upper())] = parse_limit(name, limit.strip())
    return limits


class RateLimitStorage:
    """One ``limits`` storage shared by the limiters of a process, and its Redis pool."""

    def __init__(self, storage: Storage, *, pool: ConnectionPool | None = None) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self._pool = pool

    @classmethod
    def from_url(cls, redis_url: str | None) -> RateLimitStorage:
        """Use Redis at ``redis_url``, or process memory when it is None."""
        if not redis_url:
            return cls(MemoryStorage())
        pool = ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]
        )
        return cls(storage, pool=pool)

    @property
    def is_shared(self) -> bool:
        """Whether other processes see the same counters (Redis)."""
        return self._pool is not None

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Consume one unit of ``item`` for ``identifiers``; fails open on a storage error."""
        try:
            return await self.limiter.hit(item, *identifiers)
        except StorageError as exc:
            logger.warning(
                "rate_limit_storage_failed",
                limit=str(item),
                namespace=identifiers[0] if identifiers else None,
                error=repr(exc.storage_error),
            )
            return True

    async def take(self, item: RateLimitItem, requested: int, *identifiers: str) -> int:
        """Consume up to ``requested`` units of ``item`` at once; return how many were granted.

        Granting ``n`` here counts like ``n`` successful ``hit`` calls in a row,
        for two or three storage calls instead of ``requested``. Fails open on a
        storage error, as ``hit`` does.
        """
        if requested <= 0:
            return 0
        try:
            if await self.limiter.hit(item, *identifiers, cost=requested):
                return requested
            # A refused hit consumes nothing; take what the window has left. Another
            # process may take it first, and then the second hit is refused too.
            stats = await self.limiter.get_window_stats(item, *identifiers)
            remaining = min(requested, int(stats.remaining))
            if remaining > 0 and await self.limiter.hit(item, *identifiers, cost=remaining):
                return remaining
            return 0
        except StorageError as exc:
            logger.warning(
                "rate_limit_storage_failed",
                limit=str(item),
                namespace=identifiers[0] if identifiers else None,
                error=repr(exc.storage_error),
            )
            return requested

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class NumberGuard:
    """The per-number frequency guard: carriers forbid querying one number again too soon.

    ``limit`` in ``limits`` notation (``5/minute``) or ``off`` to allow every query.
    """

    def __init__(self, limit: str, *, storage: RateLimitStorage) -> None:
        self.limit = limit
        self._item = None if limit.strip().lower() == DISABLED else parse_limit("number", limit)
        self._storage = storage

    @property
    def enabled(self) -> bool:
        return self._item is not None

    async def allow(self, key: str) -> bool:
        """Count a query of ``key`` (a number or digest identity); False when over the limit."""
        if self._item is None:
            return True
        return await self._storage.hit(self._item, "number", key)


class CarrierCapacity:
    """Per-carrier query capacity: above it the carrier refuses lookups (OperatorLimit)."""

    def __init__(
        self, limits: Mapping[Carrier, RateLimitItem], *, storage: RateLimitStorage
    ) -> None:
        self._limits = dict(limits)
        self._storage = storage

    async def allow(self, carrier: Carrier) -> bool:
        """Count one lookup on ``carrier``; False when the carrier is at capacity."""
        item = self._limits.get(carrier)
        if item is None:
            return True
        return await self._storage.hit(item, "carrier", carrier.value)

    async def take(self, carrier: Carrier, requested: int) -> int:
        """Count up to ``requested`` lookups on ``carrier`` at once; return how many fit."""
        item = self._limits.get(carrier)
        if item is None:
            return requested
        return await self._storage.take(item, requested, "carrier", carrier.value)


class AccountRateLimiter:
    """Per-account query rate (the platform's own throttling, ``Throttling.User``)."""

    def __init__(self, *, storage: RateLimitStorage) -> None:
        self._storage = storage
        self._items: dict[str, RateLimitItem] = {}

    async def hit(self, account_id: str, limit: str) -> bool:
        """Count one query of ``account_id`` against ``limit`` (e.g. ``200/second``).

        Returns False when the account is over its limit. Raises
        ``RateLimitConfigError`` for a limit string that does not parse.
        """
        return await self._storage.hit(self._item(limit), "account", account_id)

    async def take(self, account_id: str, limit: str, requested: int) -> int:
        """Count up to ``requested`` queries of ``account_id`` at once; return how many fit.

        Raises ``RateLimitConfigError`` for a limit string that does not parse.
        """
        return await self._storage.take(self._item(limit), requested, "account", account_id)

    def _item(self, limit: str) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = parse_limit("account", limit)
            self._items[limit] = item
        return item
