"""Detection engine benchmarks: throughput with no latency, and 5,000 queries in flight.

Run: .venv/bin/python bench/engine_bench.py [--queries 50000] [--in-flight 5000]

1. Throughput: queries/s on one core (one process, one event loop) through
   QueryEngine + SimulatedConnector with zero latency, first bare (guard off,
   no capacity, no cache), then with the per-number guard and carrier
   capacity on memory storage.
2. Concurrency: ``--in-flight`` queries started at once, each held by a fixed
   500 ms simulated latency. It reports wall time, errors (exceptions, and
   lookups that timed out or failed) and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from datetime import UTC, datetime

import psutil

from phonestatus.clock import FrozenClock
from phonestatus.detection import OutcomeCode, ProbeSubject, QueryEngine, Scene
from phonestatus.detection.simulated import (
    DEFAULT_LATENCY_MEAN_MS,
    LatencyProfile,
    SimulatedConnector,
    SimulatedNetwork,
)
from phonestatus.numbers import Carrier
from phonestatus.ratelimit import CarrierCapacity, NumberGuard, RateLimitStorage, parse_limit

CLOCK = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


def _subjects(count: int) -> list[ProbeSubject]:
    prefixes = ("138", "139", "130", "186", "189", "177", "150", "199")
    return [
        ProbeSubject.for_number(f"{prefixes[index % len(prefixes)]}{index:08d}")
        for index in range(count)
    ]


def _engine(
    storage: RateLimitStorage,
    *,
    latency: LatencyProfile,
    guard: str = "off",
    capacity: CarrierCapacity | None = None,
) -> QueryEngine:
    connector = SimulatedConnector(
        SimulatedNetwork(seed="bench"), latency=latency, capacity=capacity
    )
    return QueryEngine(
        connectors=connector,
        number_guard=NumberGuard(guard, storage=storage),
        cache=None,
        clock=CLOCK,
        timeout_seconds=3.0,
    )


def _rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _max_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _warm_up(engine: QueryEngine) -> None:
    # The first query loads the segment and attribution tables; keep that out of the timing.
    await engine.query(ProbeSubject.for_number("13700000000"), Scene.REAL)


async def throughput(count: int, *, limits: bool) -> float:
    storage = RateLimitStorage.from_url(None)
    capacity = None
    if limits:
        huge = parse_limit("capacity", "100000000/second")
        capacity = CarrierCapacity(dict.fromkeys(Carrier, huge), storage=storage)
    engine = _engine(
        storage,
        latency=LatencyProfile(mean_ms=DEFAULT_LATENCY_MEAN_MS, scale=0.0),
        guard="1000/minute" if limits else "off",
        capacity=capacity,
    )
    subjects = _subjects(count)
    await _warm_up(engine)

    started = time.perf_counter()
    for subject in subjects:
        await engine.query(subject, Scene.REAL)
    elapsed = time.perf_counter() - started

    await engine.aclose()
    await storage.aclose()
    return count / elapsed


async def in_flight(count: int) -> dict[str, float]:
    storage = RateLimitStorage.from_url(None)
    fixed = LatencyProfile(mean_ms=dict.fromkeys(Carrier, 500.0), sigma=0.0)
    engine = _engine(storage, latency=fixed)
    subjects = _subjects(count)
    await _warm_up(engine)
    rss_before = _rss_mib()

    started = time.perf_counter()
    results = await asyncio.gather(
        *(engine.query(subject, Scene.REAL) for subject in subjects), return_exceptions=True
    )
    elapsed = time.perf_counter() - started
    # Sampled while all results are still referenced.
    rss_after = _rss_mib()

    errors = sum(
        1 for result in results if isinstance(result, BaseException) or result.raw_code != "OK"
    )
    # Numbers ported to China Broadnet return OperatorLimit by rule, which is not an error.
    broadnet = sum(
        1
        for result in results
        if not isinstance(result, BaseException) and result.code is OutcomeCode.OPERATOR_LIMIT
    )
    await engine.aclose()
    await storage.aclose()
    return {
        "queries": count,
        "wall_seconds": elapsed,
        "errors": errors,
        "broadnet": broadnet,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "max_rss_mib": _max_rss_mib(),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--in-flight", type=int, default=5_000)
    args = parser.parse_args()

    # The in-flight run goes first, so the peak RSS it reports is its own.
    report = await in_flight(args.in_flight)
    print(
        f"{report['queries']:,} in flight at 500 ms: {report['wall_seconds']:.2f} s wall, "
        f"{report['errors']} errors, {report['broadnet']} OperatorLimit (ported to CBN), "
        f"RSS {report['rss_before_mib']:.0f} -> {report['rss_after_mib']:.0f} MiB, "
        f"peak RSS {report['max_rss_mib']:.0f} MiB (includes loading the number tables)"
    )

    bare = await throughput(args.queries, limits=False)
    print(f"throughput, bare engine:             {bare:,.0f} queries/s (1 core)")
    limited = await throughput(args.queries, limits=True)
    print(f"throughput, guard + carrier capacity: {limited:,.0f} queries/s (1 core)")


if __name__ == "__main__":
    asyncio.run(main())
