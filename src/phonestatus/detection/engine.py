"""The query engine: one number, one scene, one result.

Steps: per-number frequency guard (``RequestFrequencyLimit``), optional
result cache, route to the connector for the number's carrier, probe with
a timeout, read the network state in the scene's vocabulary. Input is
validated before, when the caller builds a ``ProbeSubject``.

``query`` never raises for a carrier failure: a timeout, a
``ConnectorError`` or an unusable answer becomes UNKNOWN, which is never
billed, and a carrier refusal becomes ``OperatorLimit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import structlog

from phonestatus.clock import Clock
from phonestatus.detection.cache import (
    DEFAULT_TTL_SECONDS,
    CachedOutcome,
    ResultCache,
    cache_key,
)
from phonestatus.detection.metrics import PROBE_SECONDS, QUERIES
from phonestatus.detection.protocols import (
    Connector,
    ConnectorError,
    OutcomeKind,
    ProbeOutcome,
    ProbeSubject,
)
from phonestatus.detection.scenes import BROADNET_SCENES, Scene, read_state
from phonestatus.logs import mask_number
from phonestatus.numbers import Carrier, PhoneStatus, Segment, attribute, lookup_segment
from phonestatus.ratelimit import NumberGuard
from phonestatus.settings import Settings

logger = structlog.get_logger(__name__)


class AsyncCloseable(Protocol):
    async def aclose(self) -> None: ...


class OutcomeCode(StrEnum):
    OK = "OK"
    OPERATOR_LIMIT = "OperatorLimit"
    FREQUENCY_LIMIT = "RequestFrequencyLimit"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The engine's result for one number in one scene.

    ``status`` is None unless ``code`` is OK. ``scene_status`` is the value
    the scene's action puts on the wire (see ``scenes.SceneAnswer``).
    ``number`` is the canonical number, or the digest as given in lowercase.
    """

    code: OutcomeCode
    scene: Scene
    status: PhoneStatus | None
    scene_status: str | None
    carrier: Carrier | None
    basic_carrier: Carrier | None
    is_ported: bool
    is_privacy_number: bool | None
    number: str
    province: str | None
    city: str | None
    segment_prefix: str | None
    connector: str
    raw_code: str
    latency_ms: int
    observed_at: datetime
    cache_hit: bool

    @property
    def billable(self) -> bool:
        """Whether the query is charged: Code OK and a known value in the scene."""
        if self.code is not OutcomeCode.OK:
            return False
        if self.scene is Scene.ATTRIBUTE:
            return True
        if self.scene is Scene.VIRTUAL:
            return self.is_privacy_number is not None
        if self.scene in (Scene.EMPTY, Scene.LEGACY):
            return self.scene_status not in (None, "UNKNOWN")
        return self.status is not None and self.status is not PhoneStatus.UNKNOWN


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

        return QueryResult(
            code=code,
            scene=scene,
            status=status,
            scene_status=scene_status,
            carrier=carrier,
            basic_carrier=basic,
            is_ported=is_ported,
            is_privacy_number=outcome.is_privacy_number if answered else None,
            number=subject.value,
            province=province,
            city=city,
            segment_prefix=segment.prefix if segment is not None else None,
            connector=outcome.connector,
            raw_code=outcome.raw_code,
            latency_ms=outcome.latency_ms if latency_ms is None else latency_ms,
            observed_at=observed_at or self._clock.now(),
            cache_hit=cache_hit,
        )


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
