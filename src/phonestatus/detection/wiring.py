"""Build the engine and its connector from settings: the one place detection is wired."""

from __future__ import annotations

import random

from phonestatus.clock import Clock
from phonestatus.detection.cache import MemoryResultCache, RedisResultCache, ResultCache, parse_ttls
from phonestatus.detection.engine import QueryEngine
from phonestatus.detection.overrides import load_overrides
from phonestatus.detection.protocols import Connector
from phonestatus.detection.simulated import (
    LatencyProfile,
    SimulatedConnector,
    SimulatedNetwork,
    parse_distribution,
    parse_latency_means,
)
from phonestatus.ratelimit import (
    CarrierCapacity,
    NumberGuard,
    RateLimitStorage,
    parse_carrier_limits,
)
from phonestatus.settings import ConnectorName, Settings


def build_simulated_connector(
    settings: Settings, *, storage: RateLimitStorage, rng: random.Random | None = None
) -> SimulatedConnector:
    overrides = load_overrides(settings.simulator_overrides) if settings.simulator_overrides else {}
    network = SimulatedNetwork(
        seed=settings.simulator_seed,
        distribution=parse_distribution(settings.simulator_distribution),
        overrides=overrides,
    )
    latency = LatencyProfile(
        mean_ms=parse_latency_means(settings.simulator_latency_mean_ms),
        sigma=settings.simulator_latency_sigma,
        scale=settings.simulator_latency_scale,
    )
    limits = parse_carrier_limits("simulator_carrier_capacity", settings.simulator_carrier_capacity)
    capacity = CarrierCapacity(limits, storage=storage) if limits else None
    return SimulatedConnector(
        network,
        latency=latency,
        capacity=capacity,
        fault_rate=settings.simulator_fault_rate,
        rng=rng,
    )


def build_connector(settings: Settings, *, storage: RateLimitStorage) -> Connector:
    if settings.connector is ConnectorName.ALIYUN:
        from phonestatus.detection.aliyun import AliyunConnector

        connector: Connector = AliyunConnector.from_settings(settings)
        return connector
    return build_simulated_connector(settings, storage=storage)


def build_engine(settings: Settings, *, clock: Clock) -> QueryEngine:
    """Build a ``QueryEngine`` from settings; ``aclose`` releases what it opened."""
    storage = RateLimitStorage.from_url(settings.redis_url)
    cache: ResultCache | None = None
    if settings.result_cache:
        cache = (
            RedisResultCache.from_url(settings.redis_url)
            if settings.redis_url
            else MemoryResultCache(clock=clock)
        )
    engine = QueryEngine(
        connectors=build_connector(settings, storage=storage),
        number_guard=NumberGuard(settings.number_rate_limit, storage=storage),
        cache=cache,
        clock=clock,
        timeout_seconds=settings.query_timeout_seconds,
        cache_ttl_seconds=parse_ttls(settings.result_cache_ttl_seconds),
    )
    engine.own(storage)
    return engine
