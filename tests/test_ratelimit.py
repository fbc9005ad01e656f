"""Rate limiters in memory and on the real Redis, including limits shared by two processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator

import pytest

from phonestatus.numbers import Carrier
from phonestatus.ratelimit import (
    AccountRateLimiter,
    CarrierCapacity,
    NumberGuard,
    RateLimitConfigError,
    RateLimitStorage,
    parse_carrier_limits,
    parse_limit,
)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture
async def memory_storage() -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(None)
    yield storage
    await storage.aclose()


@pytest.fixture
async def redis_storage(redis_url: str) -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(redis_url)
    yield storage
    await storage.aclose()


class TestParseLimit:
    def test_parse_limit_valid(self) -> None:
        item = parse_limit("number", "5/minute")
        assert item.amount == 5

    @pytest.mark.parametrize("value", ["", "five per minute", "5/fortnight", "/minute"])
    def test_parse_limit_invalid_names_value(self, value: str) -> None:
        with pytest.raises(RateLimitConfigError) as caught:
            parse_limit("number", value)
        assert repr(value) in str(caught.value)

    def test_parse_carrier_limits_valid(self) -> None:
        limits = parse_carrier_limits("capacity", "CMCC=10/second, ctcc=2/second")
        assert set(limits) == {Carrier.CMCC, Carrier.CTCC}
        assert limits[Carrier.CTCC].amount == 2

    def test_parse_carrier_limits_empty(self) -> None:
        assert parse_carrier_limits("capacity", "") == {}

    @pytest.mark.parametrize("value", ["XYZ=1/second", "CMCC", "CMCC=fast"])
    def test_parse_carrier_limits_invalid(self, value: str) -> None:
        with pytest.raises(RateLimitConfigError):
            parse_carrier_limits("capacity", value)


class TestNumberGuard:
    async def test_allow_within_limit(self, memory_storage: RateLimitStorage) -> None:
        guard = NumberGuard("3/minute", storage=memory_storage)
        key = _unique("NORMAL:138")
        results = [await guard.allow(key) for _ in range(3)]
        assert results == [True, True, True]

    async def test_allow_rejects_over_limit(self, memory_storage: RateLimitStorage) -> None:
        guard = NumberGuard("2/minute", storage=memory_storage)
        key = _unique("NORMAL:138")
        results = [await guard.allow(key) for _ in range(3)]
        assert results == [True, True, False]

    async def test_allow_counts_numbers_apart(self, memory_storage: RateLimitStorage) -> None:
        guard = NumberGuard("1/minute", storage=memory_storage)
        assert await guard.allow(_unique("a"))
        assert await guard.allow(_unique("b"))

    @pytest.mark.parametrize("value", ["off", "OFF", " off "])
    async def test_allow_off_never_limits(
        self, memory_storage: RateLimitStorage, value: str
    ) -> None:
        guard = NumberGuard(value, storage=memory_storage)
        key = _unique("n")
        results = [await guard.allow(key) for _ in range(50)]
        assert all(results)
        assert not guard.enabled

    def test_init_invalid_limit(self, memory_storage: RateLimitStorage) -> None:
        with pytest.raises(RateLimitConfigError):
            NumberGuard("often", storage=memory_storage)

    async def test_allow_redis_rejects_over_limit(self, redis_storage: RateLimitStorage) -> None:
        guard = NumberGuard("2/minute", storage=redis_storage)
        key = _unique("NORMAL:139")
        results = [await guard.allow(key) for _ in range(3)]
        assert results == [True, True, False]
        assert redis_storage.is_shared


class TestCarrierCapacity:
    async def test_allow_rejects_over_capacity(self, memory_storage: RateLimitStorage) -> None:
        limits = {Carrier.CTCC: parse_limit("capacity", "2/hour")}
        capacity = CarrierCapacity(limits, storage=memory_storage)
        results = [await capacity.allow(Carrier.CTCC) for _ in range(3)]
        assert results == [True, True, False]

    async def test_allow_unlimited_carrier(self, memory_storage: RateLimitStorage) -> None:
        limits = {Carrier.CTCC: parse_limit("capacity", "1/hour")}
        capacity = CarrierCapacity(limits, storage=memory_storage)
        results = [await capacity.allow(Carrier.CMCC) for _ in range(5)]
        assert all(results)


class TestTake:
    async def test_take_grants_what_fits(self, memory_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=memory_storage)
        account = _unique("acct")
        assert await limiter.take(account, "10/minute", 4) == 4
        assert await limiter.take(account, "10/minute", 8) == 6
        assert await limiter.take(account, "10/minute", 3) == 0
        assert not await limiter.hit(account, "10/minute")

    async def test_take_counts_like_hits(self, memory_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=memory_storage)
        account = _unique("acct")
        assert await limiter.take(account, "5/minute", 3) == 3
        results = [await limiter.hit(account, "5/minute") for _ in range(3)]
        assert results == [True, True, False]

    async def test_take_redis_shared(self, redis_url: str) -> None:
        first = RateLimitStorage.from_url(redis_url)
        second = RateLimitStorage.from_url(redis_url)
        try:
            account = _unique("acct")
            one = AccountRateLimiter(storage=first)
            two = AccountRateLimiter(storage=second)
            assert await one.take(account, "7/minute", 5) == 5
            assert await two.take(account, "7/minute", 5) == 2
            assert await one.take(account, "7/minute", 1) == 0
        finally:
            await first.aclose()
            await second.aclose()

    async def test_take_carrier_capacity(self, memory_storage: RateLimitStorage) -> None:
        limits = {Carrier.CTCC: parse_limit("capacity", "3/hour")}
        capacity = CarrierCapacity(limits, storage=memory_storage)
        assert await capacity.take(Carrier.CTCC, 5) == 3
        assert await capacity.take(Carrier.CMCC, 5) == 5
        assert not await capacity.allow(Carrier.CTCC)

    async def test_take_unreachable_redis_grants_all(self) -> None:
        storage = RateLimitStorage.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
        try:
            limiter = AccountRateLimiter(storage=storage)
            assert await limiter.take("acct", "1/minute", 9) == 9
        finally:
            await storage.aclose()


class TestAccountRateLimiter:
    async def test_hit_rejects_over_limit(self, memory_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=memory_storage)
        account = _unique("acct")
        results = [await limiter.hit(account, "2/minute") for _ in range(3)]
        assert results == [True, True, False]

    async def test_hit_accounts_apart(self, memory_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=memory_storage)
        assert await limiter.hit(_unique("a"), "1/minute")
        assert await limiter.hit(_unique("b"), "1/minute")

    async def test_hit_invalid_limit(self, memory_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=memory_storage)
        with pytest.raises(RateLimitConfigError):
            await limiter.hit("acct", "lots")

    async def test_hit_redis_rejects_over_limit(self, redis_storage: RateLimitStorage) -> None:
        limiter = AccountRateLimiter(storage=redis_storage)
        account = _unique("acct")
        results = [await limiter.hit(account, "3/minute") for _ in range(4)]
        assert results == [True, True, True, False]

    async def test_hit_redis_shared_between_storages(self, redis_url: str) -> None:
        first = RateLimitStorage.from_url(redis_url)
        second = RateLimitStorage.from_url(redis_url)
        try:
            account = _unique("acct")
            assert await AccountRateLimiter(storage=first).hit(account, "1/minute")
            assert not await AccountRateLimiter(storage=second).hit(account, "1/minute")
        finally:
            await first.aclose()
            await second.aclose()


# Runs in a separate interpreter: hits one limit N times and prints the allowed hits.
CHILD_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from phonestatus.ratelimit import AccountRateLimiter, NumberGuard, RateLimitStorage

    async def main(url, kind, key, hits):
        storage = RateLimitStorage.from_url(url)
        if kind == "account":
            limiter = AccountRateLimiter(storage=storage)
            hit = lambda: limiter.hit(key, "10/minute")
        else:
            guard = NumberGuard("10/minute", storage=storage)
            hit = lambda: guard.allow(key)
        allowed = 0
        for _ in range(hits):
            allowed += await hit()
        await storage.aclose()
        print(allowed)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


class TestSharedAcrossProcesses:
    def _run_child(self, redis_url: str, kind: str, key: str, hits: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, redis_url, kind, key, str(hits)],
            stdout=subprocess.PIPE,
            text=True,
        )

    @pytest.mark.parametrize("kind", ["account", "number"])
    def test_hit_two_processes_share_limit(self, redis_url: str, kind: str) -> None:
        key = _unique(kind)
        children = [self._run_child(redis_url, kind, key, 8) for _ in range(2)]
        outputs = [child.communicate(timeout=60)[0] for child in children]
        assert [child.returncode for child in children] == [0, 0]
        allowed = [int(output.strip()) for output in outputs]
        assert sum(allowed) == 10


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestFailOpen:
    async def test_hit_unreachable_redis_allows(self) -> None:
        storage = RateLimitStorage.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
        try:
            limiter = AccountRateLimiter(storage=storage)
            results = [await limiter.hit("acct", "1/minute") for _ in range(3)]
            assert results == [True, True, True]
        finally:
            await storage.aclose()

    async def test_allow_unreachable_redis_allows(self) -> None:
        storage = RateLimitStorage.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
        try:
            guard = NumberGuard("1/minute", storage=storage)
            assert await guard.allow("NORMAL:13800138000")
            assert await guard.allow("NORMAL:13800138000")
        finally:
            await storage.aclose()
