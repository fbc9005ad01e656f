"""Prometheus metrics of the detection engine (process-wide default registry).

Per-query events are counted here instead of logged, because they are high
volume. ``outcome`` is ``answered``, ``refused``, ``failed``, ``cache_hit`` or
``frequency_limit``.
"""

from __future__ import annotations

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
