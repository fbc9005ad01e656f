from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from phonestatus.clock import FrozenClock
from phonestatus.gateway.nonce import MemoryNonceStore, NonceStoreUnavailable, RedisNonceStore


class TestMemoryNonceStore:
    async def test_claim_first_time_true_then_false(self) -> None:
        store = MemoryNonceStore(clock=FrozenClock(datetime(2024, 1, 1, tzinfo=UTC)))
        assert await store.claim("AK", "n1", window_seconds=900) is True
        assert await store.claim("AK", "n1", window_seconds=900) is False

    async def test_claim_is_per_access_key(self) -> None:
        store = MemoryNonceStore(clock=FrozenClock(datetime(2024, 1, 1, tzinfo=UTC)))
        assert await store.claim("AK1", "n1", window_seconds=900) is True
        assert await store.claim("AK2", "n1", window_seconds=900) is True

    async def test_claim_after_window_is_fresh(self) -> None:
        clock = FrozenClock(datetime(2024, 1, 1, tzinfo=UTC))
        store = MemoryNonceStore(clock=clock)
        await store.claim("AK", "n1", window_seconds=900)
        clock.advance(timedelta(seconds=901))
        assert await store.claim("AK", "n1", window_seconds=900) is True

    async def test_claim_reclaimed_nonce_survives_its_old_expiry(self) -> None:
        clock = FrozenClock(datetime(2024, 1, 1, tzinfo=UTC))
        store = MemoryNonceStore(clock=clock)
        await store.claim("AK", "n1", window_seconds=900)
        clock.advance(timedelta(seconds=901))
        await store.claim("AK", "n1", window_seconds=900)
        # The first claim's expiry passes again in the queue; the second claim must hold.
        clock.advance(timedelta(seconds=10))
        await store.claim("AK", "other", window_seconds=900)
        assert await store.claim("AK", "n1", window_seconds=900) is False

    async def test_claim_forgets_expired_nonces(self) -> None:
        clock = FrozenClock(datetime(2024, 1, 1, tzinfo=UTC))
        store = MemoryNonceStore(clock=clock)
        for index in range(100):
            await store.claim("AK", f"old-{index}", window_seconds=60)
        clock.advance(timedelta(seconds=61))
        await store.claim("AK", "new", window_seconds=60)
        assert len(store._expiry) == 1


def _claim_in_process(url: str, key: str, nonce: str, start: Any) -> bool:
    async def run() -> bool:
        store = RedisNonceStore(url)
        try:
            start.wait()
            return await store.claim(key, nonce, window_seconds=60)
        finally:
            await store.aclose()

    return asyncio.run(run())


class TestRedisNonceStore:
    async def test_claim_first_time_true_then_false(self, redis_url: str) -> None:
        store = RedisNonceStore(redis_url)
        key = f"AK{uuid.uuid4().hex}"
        try:
            assert await store.claim(key, "n1", window_seconds=60) is True
            assert await store.claim(key, "n1", window_seconds=60) is False
            assert await store.claim(key, "n2", window_seconds=60) is True
        finally:
            await store.aclose()

    def test_claim_racing_processes_accept_once(self, redis_url: str) -> None:
        key = f"AK{uuid.uuid4().hex}"
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            start = manager.Event()
            with context.Pool(4) as pool:
                pending = [
                    pool.apply_async(_claim_in_process, (redis_url, key, "same-nonce", start))
                    for _ in range(4)
                ]
                start.set()
                results = [result.get(timeout=60) for result in pending]
        assert sorted(results) == [False, False, False, True]

    async def test_claim_unreachable_redis_fails_closed(self) -> None:
        # Port 9 (discard) on loopback has no Redis, so the store must raise rather than accept.
        store = RedisNonceStore("redis://127.0.0.1:9/0")
        try:
            with pytest.raises(NonceStoreUnavailable):
                await store.claim("AK", "n1", window_seconds=60)
        finally:
            await store.aclose()
