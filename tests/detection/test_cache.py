"""Result caches: memory with an injected clock, and the real Redis."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from phonestatus.clock import FrozenClock
from phonestatus.detection.cache import (
    DEFAULT_TTL_SECONDS,
    CachedOutcome,
    MemoryResultCache,
    RedisResultCache,
    cache_key,
    parse_ttls,
)
from phonestatus.detection.protocols import OutcomeKind, ProbeOutcome
from phonestatus.detection.scenes import NetworkState
from phonestatus.numbers import Carrier, PhoneStatus

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ENTRY = CachedOutcome(
    outcome=ProbeOutcome(
        kind=OutcomeKind.ANSWERED,
        connector="simulated",
        raw_code="OK",
        latency_ms=420,
        state=NetworkState.SMS_BARRED,
        carrier=Carrier.CTCC,
        basic_carrier=Carrier.CMCC,
        is_ported=True,
        is_privacy_number=False,
        number="13800138000",
        province="北京",
        city="北京",
    ),
    observed_at=START,
)


class TestParseTtls:
    def test_parse_ttls_overrides_one_status(self) -> None:
        ttls = parse_ttls("power_off=5")
        assert ttls[PhoneStatus.POWER_OFF] == 5
        assert ttls[PhoneStatus.NORMAL] == DEFAULT_TTL_SECONDS[PhoneStatus.NORMAL]

    @pytest.mark.parametrize("value", ["ASLEEP=5", "NORMAL=soon"])
    def test_parse_ttls_invalid(self, value: str) -> None:
        with pytest.raises(ValueError, match="invalid result cache TTL"):
            parse_ttls(value)


class TestCacheKey:
    def test_cache_key_hides_number(self) -> None:
        key = cache_key("real", "NORMAL:13800138000")
        assert "13800138000" not in key
        assert key != cache_key("sms", "NORMAL:13800138000")


class TestMemoryResultCache:
    async def test_get_returns_stored_entry(self) -> None:
        cache = MemoryResultCache(clock=FrozenClock(START))
        await cache.set("k", ENTRY, 60)
        assert await cache.get("k") == ENTRY

    async def test_get_expired_entry_misses(self) -> None:
        clock = FrozenClock(START)
        cache = MemoryResultCache(clock=clock)
        await cache.set("k", ENTRY, 60)
        clock.advance(timedelta(seconds=60))
        assert await cache.get("k") is None

    async def test_set_zero_ttl_skips(self) -> None:
        cache = MemoryResultCache(clock=FrozenClock(START))
        await cache.set("k", ENTRY, 0)
        assert await cache.get("k") is None

    async def test_set_evicts_least_recently_used(self) -> None:
        cache = MemoryResultCache(clock=FrozenClock(START), max_entries=2)
        await cache.set("a", ENTRY, 60)
        await cache.set("b", ENTRY, 60)
        await cache.get("a")
        await cache.set("c", ENTRY, 60)
        assert await cache.get("b") is None
        assert await cache.get("a") == ENTRY
        assert len(cache) == 2


class TestRedisResultCache:
    @pytest.fixture
    async def cache(self, redis_url: str) -> AsyncIterator[RedisResultCache]:
        cache = RedisResultCache.from_url(redis_url)
        yield cache
        await cache.aclose()

    async def test_get_round_trips_entry(self, cache: RedisResultCache) -> None:
        key = uuid.uuid4().hex
        await cache.set(key, ENTRY, 60)
        assert await cache.get(key) == ENTRY

    async def test_get_missing_key(self, cache: RedisResultCache) -> None:
        assert await cache.get(uuid.uuid4().hex) is None

    async def test_set_uses_redis_ttl(self, cache: RedisResultCache, redis_url: str) -> None:
        from redis.asyncio import Redis

        key = uuid.uuid4().hex
        await cache.set(key, ENTRY, 120)
        client = Redis.from_url(redis_url)
        try:
            ttl = await client.ttl("phonestatus:result:" + key)
        finally:
            await client.aclose()
        assert 0 < ttl <= 120

    async def test_get_unreachable_redis_misses(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cache = RedisResultCache.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            await cache.set("k", ENTRY, 60)
            assert await cache.get("k") is None
        finally:
            await cache.aclose()
