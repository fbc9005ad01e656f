"""Prometheus metrics of the detection engine (process-wide default registry).

Per-query events are counted here instead of logged, because they are high
volume. ``outcome`` is ``answered``, ``refused``, ``failed``, ``cache_hit`` or
``frequency_limit``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

QUERIES = Counter(
    "phonestatus_detection_queries_total",
    "Queries the detection engine completed, by scene, connector, response Code and outcome.",
    ["scene", "connector", "code", "outcome"],
)
PROBE_SECONDS = Histogram(
    "phonestatus_detection_probe_seconds",
    "Time a connector took to return one lookup, timeouts included.",
    ["connector"],
    buckets=(0.005, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0),
)


def observe_many(histogram: Any, amount: float, count: int) -> None:
    """Record ``count`` observations of the same ``amount`` in a labelled histogram.

    prometheus_client has no bulk ``observe``, and calling it once per lookup
    cost about 2 µs per number in batch jobs. This adds to the same sum and
    bucket values ``observe`` does (a test compares the two). Should a future
    prometheus_client rename them, it falls back to ``observe`` in a loop.
    """
    try:
        total, bounds, buckets = histogram._sum, histogram._upper_bounds, histogram._buckets
    except AttributeError:
        for _ in range(count):
            histogram.observe(amount)
        return
    total.inc(amount * count)
    for index, bound in enumerate(bounds):
        if amount <= bound:
            buckets[index].inc(count)
            break
