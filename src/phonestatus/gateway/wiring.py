"""The gateway's collaborators, built once per process from the ``Runtime``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.billing import PriceList
from phonestatus.clock import Clock
from phonestatus.detection import QueryEngine
from phonestatus.gateway.nonce import MemoryNonceStore, NonceStore, RedisNonceStore
from phonestatus.gateway.recorder import QueryRecorder
from phonestatus.gateway.standing import StandingReader
from phonestatus.numbers import attribute, lookup_segment
from phonestatus.ratelimit import AccountRateLimiter, RateLimitStorage
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings
from phonestatus.storage.db import create_sync_engine
from phonestatus.storage.writer import WriterProcess, writer_config

WARM_UP_NUMBER = "13800138000"


def warm_up() -> None:
    """Load the segment and attribution tables now, so the first request does not wait for them.

    Loading the attribution table takes seconds; it is cached per process afterwards.
    """
    lookup_segment(WARM_UP_NUMBER)
    attribute(WARM_UP_NUMBER)


@dataclass
class GatewayServices:
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    cipher: SecretCipher
    nonce_store: NonceStore
    rate_limiter: AccountRateLimiter
    query_engine: QueryEngine
    prices: PriceList
    clock: Clock
    standing: StandingReader
    recorder: QueryRecorder
    _closers: list[object] = field(default_factory=list)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> GatewayServices:
        """Build the services; with ``redis_url`` set, nonces and rate limits are shared in Redis."""
        settings = runtime.settings
        nonce_store: NonceStore = (
            RedisNonceStore(settings.redis_url)
            if settings.redis_url
            else MemoryNonceStore(clock=runtime.clock)
        )
        limit_storage = RateLimitStorage.from_url(settings.redis_url)
        cipher = SecretCipher(runtime.secret_key)
        prices = PriceList.from_settings(settings)
        recorder = QueryRecorder(
            session_factory=runtime.session_factory,
            prices=prices,
            clock=runtime.clock,
            sync_engine=create_sync_engine(settings.sqlalchemy_url),
            writer=(WriterProcess(writer_config(settings)) if settings.writer_process else None),
        )
        services = cls(
            settings=settings,
            session_factory=runtime.session_factory,
            cipher=cipher,
            nonce_store=nonce_store,
            rate_limiter=AccountRateLimiter(storage=limit_storage),
            query_engine=QueryEngine.from_settings(settings, clock=runtime.clock),
            prices=prices,
            clock=runtime.clock,
            standing=StandingReader(
                session_factory=runtime.session_factory,
                cipher=cipher,
                ttl_seconds=settings.gateway_cache_seconds,
            ),
            recorder=recorder,
        )
        services._closers.extend([recorder, limit_storage, nonce_store, services.query_engine])
        warm_up()
        return services

    async def aclose(self) -> None:
        for resource in self._closers:
            await resource.aclose()  # type: ignore[attr-defined]
