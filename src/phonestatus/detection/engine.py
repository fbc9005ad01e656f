"""The query engine: one number, one scene, one result.

Steps: per-number frequency guard (``RequestFrequencyLimit``), optional
result cache, route to the connector for the number's carrier, probe with
a timeout, read the network state in the scene's vocabulary. Input is
validated before, when the caller builds a ``ProbeSubject``.

``query`` never raises for a carrier failure: a timeout, a
``ConnectorError`` or an unusable answer becomes UNKNOWN, which is never
billed, and a carrier refusal becomes ``OperatorLimit``.

``query_many`` returns what ``query`` returns for each of many numbers. It
pays the per-call costs (timeout scope, metrics, clock reads) once per call
when every connector answers instantly (the simulated network with zero
latency and no faults). Otherwise it runs ``query`` for each subject, a
bounded number at a time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from phonestatus.clock import Clock
from phonestatus.detection.cache import (
    DEFAULT_TTL_SECONDS,
    CachedOutcome,
    ResultCache,
    cache_key,
)
from phonestatus.detection.metrics import PROBE_SECONDS, QUERIES, observe_many
from phonestatus.detection.protocols import (
    BulkConnector,
    Connector,
    ConnectorError,
    OutcomeKind,
    ProbeOutcome,
    ProbeSubject,
)
from phonestatus.detection.results import OutcomeCode, QueryResult
from phonestatus.detection.scenes import BROADNET_SCENES, Scene, read_state
from phonestatus.logs import mask_number
from phonestatus.numbers import Carrier, PhoneStatus, Segment, attribute, lookup_segment
from phonestatus.ratelimit import NumberGuard
from phonestatus.settings import Settings

logger = structlog.get_logger(__name__)


class AsyncCloseable(Protocol):
    async def aclose(self) -> None: ...


class QueryEngine:
    """Runs queries through connectors, one per carrier or one for all.

    With a mapping by carrier, digests and carriers missing from the mapping
    go to ``default_connector``, or to the mapping's first connector.
    """

    def __init__(
        self,
        *,
        connectors: Mapping[Carrier, Connector] | Connector,
        number_guard: NumberGuard,
        cache: ResultCache | None,
        clock: Clock,
        timeout_seconds: float,
        default_connector: Connector | None = None,
        cache_ttl_seconds: Mapping[PhoneStatus, int] | None = None,
    ) -> None:
        if isinstance(connectors, Mapping):
            self._routes: dict[Carrier, Connector] = dict(connectors)
            fallback = default_connector or next(iter(self._routes.values()), None)
            if fallback is None:
                raise ValueError("QueryEngine needs at least one connector")
            # Digests and numbers of an unrouted carrier go to the fallback.
            self._fallback: Connector = fallback
        else:
            self._routes = {}
            self._fallback = connectors
        self._guard = number_guard
        self._cache = cache
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._ttls = dict(cache_ttl_seconds or DEFAULT_TTL_SECONDS)
        self._closers: list[AsyncCloseable] = []

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> QueryEngine:
        """Wire the engine, its limits storage, cache and connector from settings."""
        from phonestatus.detection.wiring import build_engine

        return build_engine(settings, clock=clock)

    @property
    def connectors(self) -> list[Connector]:
        unique: dict[int, Connector] = {id(self._fallback): self._fallback}
        for connector in self._routes.values():
            unique.setdefault(id(connector), connector)
        return list(unique.values())

    async def query(self, subject: ProbeSubject, scene: Scene) -> QueryResult:
        """Return ``subject``'s status in ``scene``; carrier failures come back as results."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        segment = lookup_segment(subject.number) if subject.number is not None else None
        connector = self._route(segment)

        if not await self._guard.allow(subject.key):
            refusal = ProbeOutcome(
                kind=OutcomeKind.REFUSED,
                connector=connector.name,
                raw_code=OutcomeCode.FREQUENCY_LIMIT.value,
                latency_ms=_elapsed_ms(loop, started),
            )
            result = self._result(
                subject, scene, segment, refusal, code=OutcomeCode.FREQUENCY_LIMIT
            )
            return _counted(result, "frequency_limit")

        key = cache_key(scene.value, subject.key)
        if self._cache is not None:
            cached = await self._cache.get(key)
            if cached is not None:
                result = self._result(
                    subject,
                    scene,
                    segment,
                    cached.outcome,
                    observed_at=cached.observed_at,
                    latency_ms=_elapsed_ms(loop, started),
                    cache_hit=True,
                )
                return _counted(result, "cache_hit")

        probe_started = loop.time()
        outcome = await self._probe(connector, subject, scene, started)
        PROBE_SECONDS.labels(connector.name).observe(loop.time() - probe_started)
        observed_at = self._clock.now()

        if self._cache is not None and outcome.is_answered:
            ttl = self._ttls.get(self._ttl_status(outcome), 0)
            await self._cache.set(key, CachedOutcome(outcome, observed_at), ttl)

        result = self._result(subject, scene, segment, outcome, observed_at=observed_at)
        return _counted(result, outcome.kind.value)

    async def query_many(
        self, subjects: Sequence[ProbeSubject], scene: Scene, *, concurrency: int = 64
    ) -> list[QueryResult]:
        """Return ``query``'s result for each subject, in the order given.

        The frequency guard and the cache see the subjects in order, as they
        would see sequential ``query`` calls. ``concurrency`` bounds the
        lookups in flight when a connector has to be awaited per number.
        """
        bulk = self._bulk_connectors()
        if bulk is None:
            return await self._query_each(subjects, scene, concurrency)
        if self._cache is None:
            return await self._query_bulk(subjects, scene, bulk)

        # A repeated subject must find the result its first lookup cached, so
        # each run of distinct subjects is looked up and cached before the next.
        results: list[QueryResult] = []
        for run in _distinct_runs(subjects):
            results += await self._query_bulk(run, scene, bulk)
        return results

    async def _query_bulk(
        self, subjects: Sequence[ProbeSubject], scene: Scene, bulk: dict[int, BulkConnector]
    ) -> list[QueryResult]:
        loop = asyncio.get_running_loop()
        results: list[QueryResult | None] = [None] * len(subjects)
        segments = [
            lookup_segment(subject.number) if subject.number is not None else None
            for subject in subjects
        ]
        counts: Counter[tuple[str, str, str]] = Counter()

        # Per-subject steps stay in order so the guard and cache count exactly as query does.
        to_probe: dict[int, list[int]] = {}
        for index, subject in enumerate(subjects):
            subject_started = loop.time()
            connector = self._route(segments[index])
            if self._guard.enabled and not await self._guard.allow(subject.key):
                refusal = ProbeOutcome(
                    kind=OutcomeKind.REFUSED,
                    connector=connector.name,
                    raw_code=OutcomeCode.FREQUENCY_LIMIT.value,
                    latency_ms=_elapsed_ms(loop, subject_started),
                )
                result = self._result(
                    subject, scene, segments[index], refusal, code=OutcomeCode.FREQUENCY_LIMIT
                )
                results[index] = result
                counts[(result.connector, result.code.value, "frequency_limit")] += 1
                continue
            if self._cache is not None:
                cached = await self._cache.get(cache_key(scene.value, subject.key))
                if cached is not None:
                    result = self._result(
                        subject,
                        scene,
                        segments[index],
                        cached.outcome,
                        observed_at=cached.observed_at,
                        latency_ms=_elapsed_ms(loop, subject_started),
                        cache_hit=True,
                    )
                    results[index] = result
                    counts[(result.connector, result.code.value, "cache_hit")] += 1
                    continue
            to_probe.setdefault(id(connector), []).append(index)

        for connector_id, indexes in to_probe.items():
            connector = bulk[connector_id]
            probe_started = loop.time()
            outcomes = await connector.probe_many(
                [subjects[index] for index in indexes], scene=scene
            )
            # NOTE: the histogram gets the group's mean duration once per lookup,
            # so its count matches query's while single lookups are not timed.
            share = (loop.time() - probe_started) / len(indexes)
            observe_many(PROBE_SECONDS.labels(connector.name), share, len(indexes))
            observed_at = self._clock.now()
            for index, outcome in zip(indexes, outcomes, strict=True):
                if self._cache is not None and outcome.is_answered:
                    ttl = self._ttls.get(self._ttl_status(outcome), 0)
                    key = cache_key(scene.value, subjects[index].key)
                    await self._cache.set(key, CachedOutcome(outcome, observed_at), ttl)
                result = self._result(
                    subjects[index], scene, segments[index], outcome, observed_at=observed_at
                )
                results[index] = result
                counts[(result.connector, result.code.value, outcome.kind.value)] += 1

        for (connector_name, code, outcome_name), count in counts.items():
            QUERIES.labels(scene.value, connector_name, code, outcome_name).inc(count)
        return [result for result in results if result is not None]

    async def aclose(self) -> None:
        for connector in self.connectors:
            await connector.aclose()
        if self._cache is not None:
            await self._cache.aclose()
        for resource in self._closers:
            await resource.aclose()

    def own(self, resource: AsyncCloseable) -> None:
        """Close ``resource`` when the engine closes."""
        self._closers.append(resource)

    def _bulk_connectors(self) -> dict[int, BulkConnector] | None:
        """Return the connectors by ``id`` if every one returns outcomes without delay, else None."""
        bulk: dict[int, BulkConnector] = {}
        for connector in self.connectors:
            if not isinstance(connector, BulkConnector) or not connector.answers_instantly:
                return None
            bulk[id(connector)] = connector
        return bulk

    async def _query_each(
        self, subjects: Sequence[ProbeSubject], scene: Scene, concurrency: int
    ) -> list[QueryResult]:
        results: list[QueryResult | None] = [None] * len(subjects)
        cursor = iter(range(len(subjects)))

        async def lane() -> None:
            for index in cursor:
                results[index] = await self.query(subjects[index], scene)

        await asyncio.gather(*(lane() for _ in range(min(concurrency, len(subjects)))))
        return [result for result in results if result is not None]

    def _route(self, segment: Segment | None) -> Connector:
        if segment is None:
            return self._fallback
        return self._routes.get(segment.carrier, self._fallback)

    async def _probe(
        self, connector: Connector, subject: ProbeSubject, scene: Scene, started: float
    ) -> ProbeOutcome:
        loop = asyncio.get_running_loop()
        deadline = started + self._timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                return await connector.probe(subject, scene=scene, deadline=deadline)
        except TimeoutError:
            raw_code = "Timeout"
            logger.info(
                "probe_timed_out",
                connector=connector.name,
                number=mask_number(subject.value),
                timeout_seconds=self._timeout_seconds,
            )
        except ConnectorError as exc:
            raw_code = exc.raw_code
            logger.warning(
                "probe_failed",
                connector=connector.name,
                raw_code=exc.raw_code,
                number=mask_number(subject.value),
                error=str(exc),
            )
        return ProbeOutcome(
            kind=OutcomeKind.FAILED,
            connector=connector.name,
            raw_code=raw_code,
            latency_ms=_elapsed_ms(loop, started),
        )

    def _ttl_status(self, outcome: ProbeOutcome) -> PhoneStatus:
        status = read_state(outcome.state, Scene.REAL, outcome.carrier).status
        return status or PhoneStatus.UNKNOWN

    def _result(
        self,
        subject: ProbeSubject,
        scene: Scene,
        segment: Segment | None,
        outcome: ProbeOutcome,
        *,
        code: OutcomeCode | None = None,
        observed_at: datetime | None = None,
        latency_ms: int | None = None,
        cache_hit: bool = False,
    ) -> QueryResult:
        number = subject.number or outcome.number
        if segment is None and number is not None:
            segment = lookup_segment(number)
        basic = outcome.basic_carrier or (segment.carrier if segment is not None else None)
        carrier = outcome.carrier
        if carrier is None and outcome.kind is not OutcomeKind.REFUSED:
            # NOTE: when the connector reports no carrier, the segment owner is the
            # best guess, and it is wrong for a ported number. A refusal keeps None.
            carrier = basic
        is_ported = (
            outcome.is_ported
            if outcome.is_ported is not None
            else (carrier is not None and basic is not None and carrier is not basic)
        )

        if code is None:
            code = _code_for(outcome, carrier, scene)
        answered = code is OutcomeCode.OK and outcome.is_answered
        if code is OutcomeCode.OK:
            answer = read_state(outcome.state if answered else None, scene, carrier)
            status, scene_status = answer.status, answer.scene_status
        else:
            status, scene_status = None, None

        province, city = outcome.province, outcome.city
        if number is not None:
            attribution = attribute(number)
            province, city = attribution.province, attribution.city

        # Positional, in field order (checked by a test): keyword arguments cost
        # about 0.6 s more per million numbers.
        return QueryResult(
            code,
            scene,
            status,
            scene_status,
            carrier,
            basic,  # basic_carrier
            is_ported,
            outcome.is_privacy_number if answered else None,
            subject.value,  # number
            province,
            city,
            segment.prefix if segment is not None else None,  # segment_prefix
            outcome.connector,
            outcome.raw_code,
            outcome.latency_ms if latency_ms is None else latency_ms,
            observed_at or self._clock.now(),
            cache_hit,
        )


def _distinct_runs(subjects: Sequence[ProbeSubject]) -> list[Sequence[ProbeSubject]]:
    """Split ``subjects`` into consecutive runs in which no subject key repeats."""
    runs: list[Sequence[ProbeSubject]] = []
    start = 0
    seen: set[str] = set()
    for index, subject in enumerate(subjects):
        if subject.key in seen:
            runs.append(subjects[start:index])
            start = index
            seen = set()
        seen.add(subject.key)
    runs.append(subjects[start:])
    return runs


def _code_for(outcome: ProbeOutcome, carrier: Carrier | None, scene: Scene) -> OutcomeCode:
    if outcome.kind is OutcomeKind.REFUSED:
        # An upstream service may apply the per-number rule itself.
        if outcome.raw_code == OutcomeCode.FREQUENCY_LIMIT.value:
            return OutcomeCode.FREQUENCY_LIMIT
        return OutcomeCode.OPERATOR_LIMIT
    if carrier is Carrier.CBN and scene not in BROADNET_SCENES:
        return OutcomeCode.OPERATOR_LIMIT
    return OutcomeCode.OK


def _counted(result: QueryResult, outcome: str) -> QueryResult:
    QUERIES.labels(result.scene.value, result.connector, result.code.value, outcome).inc()
    return result


def _elapsed_ms(loop: asyncio.AbstractEventLoop, started: float) -> int:
    return round((loop.time() - started) * 1000)
