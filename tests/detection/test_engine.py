"""QueryEngine: guard, cache, routing, timeout and the scene reading, with fake connectors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram

from phonestatus.clock import FrozenClock
from phonestatus.detection import (
    ConnectorError,
    NetworkState,
    OutcomeCode,
    OutcomeKind,
    ProbeOutcome,
    ProbeSubject,
    QueryEngine,
    QueryResult,
    Scene,
)
from phonestatus.detection.cache import MemoryResultCache
from phonestatus.detection.metrics import observe_many
from phonestatus.detection.simulated import (
    DEFAULT_LATENCY_MEAN_MS,
    LatencyProfile,
    SimulatedConnector,
    SimulatedNetwork,
)
from phonestatus.numbers import Carrier, Mask, PhoneStatus, digest
from phonestatus.numbers.attribution import attribute
from phonestatus.ratelimit import NumberGuard, RateLimitStorage
from phonestatus.settings import Settings

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MOBILE = "13800138000"
TELECOM = "18912345678"


class FakeConnector:
    """Return one scripted outcome for every probe and record the subjects."""

    def __init__(
        self,
        name: str = "fake",
        *,
        kind: OutcomeKind = OutcomeKind.ANSWERED,
        state: NetworkState | None = NetworkState.IN_SERVICE,
        carrier: Carrier | None = None,
        basic_carrier: Carrier | None = None,
        is_privacy_number: bool | None = False,
        number: str | None = None,
        raw_code: str = "OK",
    ) -> None:
        self.name = name
        self.calls: list[tuple[ProbeSubject, Scene]] = []
        self.closed = False
        self._outcome = ProbeOutcome(
            kind=kind,
            connector=name,
            raw_code=raw_code,
            latency_ms=12,
            state=state if kind is OutcomeKind.ANSWERED else None,
            carrier=carrier,
            basic_carrier=basic_carrier,
            is_privacy_number=is_privacy_number,
            number=number,
        )

    async def probe(self, subject: ProbeSubject, *, scene: Scene, deadline: float) -> ProbeOutcome:
        self.calls.append((subject, scene))
        return self._outcome

    async def aclose(self) -> None:
        self.closed = True


class HangingConnector(FakeConnector):
    async def probe(self, subject: ProbeSubject, *, scene: Scene, deadline: float) -> ProbeOutcome:
        self.calls.append((subject, scene))
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FailingConnector(FakeConnector):
    async def probe(self, subject: ProbeSubject, *, scene: Scene, deadline: float) -> ProbeOutcome:
        raise ConnectorError(self.name, "SystemError", "upstream answered HTTP 500")


@pytest.fixture
async def storage() -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(None)
    yield storage
    await storage.aclose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def make_engine(storage: RateLimitStorage, clock: FrozenClock) -> Callable[..., QueryEngine]:
    def make(
        connectors: object,
        *,
        guard: str = "off",
        cache: MemoryResultCache | None = None,
        timeout_seconds: float = 3.0,
    ) -> QueryEngine:
        return QueryEngine(
            connectors=connectors,  # type: ignore[arg-type]
            number_guard=NumberGuard(guard, storage=storage),
            cache=cache,
            clock=clock,
            timeout_seconds=timeout_seconds,
        )

    return make


def _subject(number: str = MOBILE) -> ProbeSubject:
    return ProbeSubject.for_number(number)


class TestProbeSubject:
    def test_from_input_parses_number(self) -> None:
        subject = ProbeSubject.from_input("+86 138-0013-8000", Mask.NORMAL)
        assert subject.number == MOBILE
        assert subject.key == f"NORMAL:{MOBILE}"

    def test_from_input_lowercases_digest(self) -> None:
        value = digest(MOBILE, Mask.MD5).upper()
        subject = ProbeSubject.from_input(value, Mask.MD5)
        assert subject.digest == value.lower()
        assert subject.value == value.lower()

    def test_from_input_rejects_bad_number(self) -> None:
        from phonestatus.numbers import NumberParseError

        with pytest.raises(NumberParseError):
            ProbeSubject.from_input("12345", Mask.NORMAL)

    def test_from_input_rejects_bad_digest(self) -> None:
        from phonestatus.numbers import DigestError

        with pytest.raises(DigestError):
            ProbeSubject.from_input("xyz", Mask.SHA256)

    def test_init_needs_exactly_one_value(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            ProbeSubject(number=MOBILE, digest="ab", mask=Mask.MD5)

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    def test_matches_digest_of_number(self, mask: Mask) -> None:
        subject = ProbeSubject(number=None, digest=digest(MOBILE, mask), mask=mask)
        assert subject.matches(MOBILE)
        assert not subject.matches("13800138001")


class TestQuery:
    async def test_query_maps_state_to_scene(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector(state=NetworkState.SMS_BARRED))
        sms = await engine.query(_subject(), Scene.SMS)
        voice = await engine.query(_subject(), Scene.VOICE)
        assert sms.status is PhoneStatus.SHUTDOWN
        assert voice.status is PhoneStatus.NORMAL

    async def test_query_reports_number_facts(
        self, make_engine: Callable[..., QueryEngine], clock: FrozenClock
    ) -> None:
        engine = make_engine(FakeConnector())
        result = await engine.query(_subject(), Scene.REAL)
        assert result.code is OutcomeCode.OK
        assert result.number == MOBILE
        assert result.basic_carrier is Carrier.CMCC
        assert result.carrier is Carrier.CMCC
        assert result.segment_prefix == "138"
        place = attribute(MOBILE)
        assert (result.province, result.city) == (place.province, place.city)
        assert result.connector == "fake"
        assert result.raw_code == "OK"
        assert result.latency_ms == 12
        assert result.observed_at == clock.now()
        assert result.cache_hit is False
        assert result.billable

    async def test_query_ported_number(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector(carrier=Carrier.CUCC, basic_carrier=Carrier.CMCC))
        result = await engine.query(_subject(), Scene.REAL)
        assert result.is_ported
        assert result.carrier is Carrier.CUCC

    async def test_query_telecom_busy_reads_normal(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        engine = make_engine(FakeConnector(state=NetworkState.BUSY))
        result = await engine.query(_subject(TELECOM), Scene.REAL)
        assert result.status is PhoneStatus.NORMAL

    @pytest.mark.parametrize(
        "scene", [s for s in Scene if s not in (Scene.PUBLIC, Scene.ATTRIBUTE)]
    )
    async def test_query_broadnet_operator_limit(
        self, make_engine: Callable[..., QueryEngine], scene: Scene
    ) -> None:
        engine = make_engine(FakeConnector(carrier=Carrier.CBN))
        result = await engine.query(_subject(), scene)
        assert result.code is OutcomeCode.OPERATOR_LIMIT
        assert result.status is None
        assert not result.billable

    @pytest.mark.parametrize("scene", [Scene.PUBLIC, Scene.ATTRIBUTE])
    async def test_query_broadnet_served_scenes(
        self, make_engine: Callable[..., QueryEngine], scene: Scene
    ) -> None:
        engine = make_engine(FakeConnector())
        result = await engine.query(_subject("19212345678"), scene)
        assert result.code is OutcomeCode.OK
        assert result.carrier is Carrier.CBN

    async def test_query_refusal_operator_limit(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        engine = make_engine(FakeConnector(kind=OutcomeKind.REFUSED, raw_code="OperatorLimit"))
        result = await engine.query(_subject(), Scene.REAL)
        assert result.code is OutcomeCode.OPERATOR_LIMIT
        assert result.raw_code == "OperatorLimit"
        assert not result.billable

    async def test_query_failure_unknown(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector(kind=OutcomeKind.FAILED, raw_code="SystemError"))
        result = await engine.query(_subject(), Scene.REAL)
        assert result.code is OutcomeCode.OK
        assert result.status is PhoneStatus.UNKNOWN
        assert not result.billable

    async def test_query_connector_error_unknown(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        engine = make_engine(FailingConnector())
        result = await engine.query(_subject(), Scene.SMS)
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code == "SystemError"

    async def test_query_timeout_unknown(self, make_engine: Callable[..., QueryEngine]) -> None:
        connector = HangingConnector()
        engine = make_engine(connector, timeout_seconds=0.05)
        result = await engine.query(_subject(), Scene.REAL)
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code == "Timeout"
        assert not result.billable
        assert len(connector.calls) == 1

    async def test_query_frequency_limit(self, make_engine: Callable[..., QueryEngine]) -> None:
        connector = FakeConnector()
        engine = make_engine(connector, guard="2/minute")
        subject = _subject("13800000001")
        results = [await engine.query(subject, Scene.REAL) for _ in range(3)]
        assert [r.code for r in results] == [
            OutcomeCode.OK,
            OutcomeCode.OK,
            OutcomeCode.FREQUENCY_LIMIT,
        ]
        assert results[2].status is None
        assert not results[2].billable
        assert len(connector.calls) == 2

    async def test_query_routes_by_carrier(self, make_engine: Callable[..., QueryEngine]) -> None:
        mobile, telecom = FakeConnector("mobile"), FakeConnector("telecom")
        engine = make_engine({Carrier.CMCC: mobile, Carrier.CTCC: telecom})
        first = await engine.query(_subject(MOBILE), Scene.REAL)
        second = await engine.query(_subject(TELECOM), Scene.REAL)
        assert first.connector == "mobile"
        assert second.connector == "telecom"

    async def test_query_digest_goes_to_fallback(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        mobile = FakeConnector("mobile", carrier=Carrier.CMCC, basic_carrier=Carrier.CMCC)
        engine = make_engine({Carrier.CMCC: mobile, Carrier.CTCC: FakeConnector("telecom")})
        subject = ProbeSubject(number=None, digest=digest(MOBILE, Mask.SHA256), mask=Mask.SHA256)
        result = await engine.query(subject, Scene.REAL)
        assert result.connector == "mobile"
        assert result.number == subject.digest
        assert result.province is None
        assert result.segment_prefix is None

    async def test_query_digest_resolved_by_connector(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        engine = make_engine(FakeConnector(number=MOBILE))
        subject = ProbeSubject(number=None, digest=digest(MOBILE, Mask.MD5), mask=Mask.MD5)
        result = await engine.query(subject, Scene.REAL)
        assert result.number == subject.digest
        assert result.segment_prefix == "138"
        assert result.basic_carrier is Carrier.CMCC

    async def test_aclose_closes_connectors(self, make_engine: Callable[..., QueryEngine]) -> None:
        connector = FakeConnector()
        engine = make_engine(connector)
        await engine.aclose()
        assert connector.closed


class TestBillable:
    @pytest.mark.parametrize(
        ("scene", "state", "expected"),
        [
            (Scene.REAL, NetworkState.UNKNOWN, False),
            (Scene.REAL, NetworkState.NOT_ALLOCATED, True),
            (Scene.PUBLIC, NetworkState.DEFECT, False),
            (Scene.LEGACY, NetworkState.DEFECT, False),
            (Scene.LEGACY, NetworkState.SUSPENDED, True),
            (Scene.EMPTY, NetworkState.UNKNOWN, False),
            (Scene.EMPTY, NetworkState.NOT_ALLOCATED, True),
            (Scene.ATTRIBUTE, NetworkState.UNKNOWN, True),
            (Scene.VIRTUAL, NetworkState.IN_SERVICE, True),
        ],
    )
    async def test_billable_per_scene(
        self,
        make_engine: Callable[..., QueryEngine],
        scene: Scene,
        state: NetworkState,
        expected: bool,
    ) -> None:
        engine = make_engine(FakeConnector(state=state))
        result = await engine.query(_subject(), scene)
        assert result.billable is expected

    async def test_billable_virtual_without_answer(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        engine = make_engine(FakeConnector(kind=OutcomeKind.FAILED))
        result = await engine.query(_subject(), Scene.VIRTUAL)
        assert result.is_privacy_number is None
        assert not result.billable


class TestCache:
    async def test_query_second_call_hits_cache(
        self, make_engine: Callable[..., QueryEngine], clock: FrozenClock
    ) -> None:
        connector = FakeConnector()
        engine = make_engine(connector, cache=MemoryResultCache(clock=clock))
        first = await engine.query(_subject(), Scene.REAL)
        clock.advance(timedelta(minutes=1))
        second = await engine.query(_subject(), Scene.REAL)
        assert not first.cache_hit
        assert second.cache_hit
        assert second.status is first.status
        assert second.observed_at == first.observed_at
        assert len(connector.calls) == 1

    async def test_query_cache_expires_per_status(
        self, make_engine: Callable[..., QueryEngine], clock: FrozenClock
    ) -> None:
        connector = FakeConnector(state=NetworkState.BUSY)
        engine = make_engine(connector, cache=MemoryResultCache(clock=clock))
        await engine.query(_subject(), Scene.REAL)
        clock.advance(timedelta(seconds=61))
        second = await engine.query(_subject(), Scene.REAL)
        assert not second.cache_hit
        assert len(connector.calls) == 2

    async def test_query_failures_not_cached(
        self, make_engine: Callable[..., QueryEngine], clock: FrozenClock
    ) -> None:
        connector = FakeConnector(kind=OutcomeKind.FAILED)
        engine = make_engine(connector, cache=MemoryResultCache(clock=clock))
        await engine.query(_subject(), Scene.REAL)
        second = await engine.query(_subject(), Scene.REAL)
        assert not second.cache_hit
        assert len(connector.calls) == 2

    async def test_query_cache_keyed_by_scene(
        self, make_engine: Callable[..., QueryEngine], clock: FrozenClock
    ) -> None:
        connector = FakeConnector()
        engine = make_engine(connector, cache=MemoryResultCache(clock=clock))
        await engine.query(_subject(), Scene.REAL)
        other = await engine.query(_subject(), Scene.SMS)
        assert not other.cache_hit


OVERRIDES = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
13900000003,,,sms,
13900000005,POWER_OFF,,,CTCC
"""


class TestFromSettings:
    @pytest.fixture
    async def engine(
        self, settings_factory: Callable[..., Settings], tmp_path: Path
    ) -> AsyncIterator[QueryEngine]:
        path = tmp_path / "overrides.csv"
        path.write_text(OVERRIDES, encoding="utf-8")
        settings = settings_factory(simulator_overrides=path)
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        yield engine
        await engine.aclose()

    async def test_query_override_functional_suspension(self, engine: QueryEngine) -> None:
        subject = _subject("13900000003")
        sms = await engine.query(subject, Scene.SMS)
        voice = await engine.query(subject, Scene.VOICE)
        assert sms.status is PhoneStatus.SHUTDOWN
        assert voice.status is PhoneStatus.NORMAL
        assert sms.connector == "simulated"

    async def test_query_override_ported_to_telecom(self, engine: QueryEngine) -> None:
        result = await engine.query(_subject("13900000005"), Scene.REAL)
        assert result.carrier is Carrier.CTCC
        assert result.basic_carrier is Carrier.CMCC
        assert result.is_ported
        # A powered-off handset on China Telecom reads as in service.
        assert result.status is PhoneStatus.NORMAL

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    async def test_query_override_digest_answers_same(
        self, engine: QueryEngine, mask: Mask
    ) -> None:
        plain = await engine.query(_subject("13900000003"), Scene.SMS)
        hashed = await engine.query(
            ProbeSubject.from_input(digest("13900000003", mask), mask), Scene.SMS
        )
        assert hashed.status is plain.status
        assert hashed.carrier is plain.carrier
        assert hashed.province == plain.province

    async def test_query_telecom_never_reports_reachability(self, engine: QueryEngine) -> None:
        withheld = {PhoneStatus.BUSY, PhoneStatus.POWER_OFF, PhoneStatus.SUSPECTED_POWER_OFF}
        for index in range(500):
            result = await engine.query(_subject(f"189{index:08d}"), Scene.REAL)
            if result.carrier is Carrier.CTCC:
                assert result.status not in withheld

    async def test_query_sms_never_busy(self, engine: QueryEngine) -> None:
        for index in range(500):
            result = await engine.query(_subject(f"135{index:08d}"), Scene.SMS)
            assert result.status is not PhoneStatus.BUSY


class TestFromSettingsWiring:
    async def test_query_redis_guard(
        self, settings_factory: Callable[..., Settings], redis_url: str
    ) -> None:
        settings = settings_factory(redis_url=redis_url, number_rate_limit="2/minute")
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        # A number no earlier run has used, so the shared window starts empty.
        number = f"138{uuid.uuid4().int % 10**8:08d}"
        try:
            results = [await engine.query(_subject(number), Scene.REAL) for _ in range(3)]
        finally:
            await engine.aclose()
        assert results[1].code is not OutcomeCode.FREQUENCY_LIMIT
        assert results[2].code is OutcomeCode.FREQUENCY_LIMIT

    async def test_query_redis_cache(
        self, settings_factory: Callable[..., Settings], redis_url: str
    ) -> None:
        settings = settings_factory(
            redis_url=redis_url,
            result_cache=True,
            simulator_seed=uuid.uuid4().hex,
            simulator_distribution="in_service=1",
        )
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        number = f"139{uuid.uuid4().int % 10**8:08d}"
        try:
            first = await engine.query(_subject(number), Scene.SMS)
            second = await engine.query(_subject(number), Scene.SMS)
        finally:
            await engine.aclose()
        assert not first.cache_hit
        assert second.cache_hit
        assert second.status is PhoneStatus.NORMAL

    async def test_query_carrier_capacity(self, settings_factory: Callable[..., Settings]) -> None:
        settings = settings_factory(
            simulator_carrier_capacity="CTCC=1/hour", simulator_distribution="not_allocated=1"
        )
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        try:
            first = await engine.query(_subject(TELECOM), Scene.REAL)
            second = await engine.query(_subject(TELECOM), Scene.REAL)
        finally:
            await engine.aclose()
        assert first.code is OutcomeCode.OK
        assert second.code is OutcomeCode.OPERATOR_LIMIT

    async def test_query_fault_rate(self, settings_factory: Callable[..., Settings]) -> None:
        # Unallocated numbers are never ported, so none reads OperatorLimit as CBN.
        settings = settings_factory(
            simulator_fault_rate=1.0,
            query_timeout_seconds=0.05,
            simulator_distribution="not_allocated=1",
        )
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        try:
            results = [
                await engine.query(_subject(f"137{index:08d}"), Scene.REAL) for index in range(10)
            ]
        finally:
            await engine.aclose()
        assert {result.status for result in results} == {PhoneStatus.UNKNOWN}
        assert {result.raw_code for result in results} <= {"Timeout", "SystemError"}
        assert not any(result.billable for result in results)


class TestMetrics:
    @staticmethod
    def _count(scene: str, code: str, outcome: str) -> float:
        from prometheus_client import REGISTRY

        labels = {"scene": scene, "connector": "metered", "code": code, "outcome": outcome}
        value = REGISTRY.get_sample_value("phonestatus_detection_queries_total", labels)
        return value or 0.0

    async def test_query_counts_outcomes(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector("metered"), guard="1/minute")
        subject = _subject("13800000077")
        answered_before = self._count("voice", "OK", "answered")
        limited_before = self._count("voice", "RequestFrequencyLimit", "frequency_limit")

        await engine.query(subject, Scene.VOICE)
        await engine.query(subject, Scene.VOICE)

        assert self._count("voice", "OK", "answered") == answered_before + 1
        assert (
            self._count("voice", "RequestFrequencyLimit", "frequency_limit") == limited_before + 1
        )


class TestFromSettingsErrors:
    @pytest.mark.parametrize(
        ("overrides", "fragment"),
        [
            ({"number_rate_limit": "often"}, "invalid rate limit"),
            ({"simulator_distribution": "asleep=1"}, "invalid simulator distribution"),
            ({"simulator_carrier_capacity": "CMCC"}, "invalid rate limit"),
            ({"result_cache_ttl_seconds": "NORMAL=soon"}, "invalid result cache TTL"),
        ],
    )
    def test_from_settings_invalid_setting(
        self,
        settings_factory: Callable[..., Settings],
        overrides: dict[str, str],
        fragment: str,
    ) -> None:
        settings = settings_factory(**overrides)
        with pytest.raises(ValueError, match=fragment):
            QueryEngine.from_settings(settings, clock=FrozenClock(START))


BULK_OVERRIDES = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
13900000003,,,sms,
13900000005,POWER_OFF,,,CTCC
18900000001,BUSY,,,
"""


def _bulk_subjects() -> list[ProbeSubject]:
    """Numbers of every carrier, the pinned ones, repeats and digests."""
    numbers = [
        f"{prefix}{index * 7919 % 10**8:08d}"
        for index in range(150)
        for prefix in ("138", "186", "189", "192")
    ]
    numbers += ["13800138000", "13900000003", "13900000005", "18900000001"]
    numbers += numbers[:40]
    subjects = [_subject(number) for number in numbers]
    subjects += [
        ProbeSubject.from_input(digest("13900000005", mask), mask) for mask in (Mask.MD5, Mask.SM3)
    ]
    subjects.append(ProbeSubject.from_input(digest("13700000000", Mask.SHA256), Mask.SHA256))
    return subjects


class TestQueryMany:
    """``query_many`` must return exactly what one ``query`` call per subject returns."""

    @staticmethod
    async def _both(
        settings: Settings, subjects: list[ProbeSubject], scene: Scene
    ) -> tuple[list[QueryResult], list[QueryResult]]:
        # Two engines with separate in-process limits and caches, so each starts empty.
        single = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        bulk = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        try:
            one_by_one = [await single.query(subject, scene) for subject in subjects]
            together = await bulk.query_many(subjects, scene)
        finally:
            await single.aclose()
            await bulk.aclose()
        # Latency is measured, not decided, so it is left out of the comparison.
        return (
            [replace(result, latency_ms=0) for result in one_by_one],
            [replace(result, latency_ms=0) for result in together],
        )

    @pytest.mark.parametrize("scene", [Scene.REAL, Scene.SMS, Scene.EMPTY, Scene.LEGACY])
    async def test_query_many_matches_query(
        self, settings_factory: Callable[..., Settings], tmp_path: Path, scene: Scene
    ) -> None:
        path = tmp_path / "overrides.csv"
        path.write_text(BULK_OVERRIDES, encoding="utf-8")
        settings = settings_factory(simulator_overrides=path)
        subjects = _bulk_subjects()

        expected, actual = await self._both(settings, subjects, scene)

        assert len(actual) == len(subjects)
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert got == want, f"subject {index}: {subjects[index].value}"

    async def test_query_many_matches_with_limits(
        self, settings_factory: Callable[..., Settings], tmp_path: Path
    ) -> None:
        path = tmp_path / "overrides.csv"
        path.write_text(BULK_OVERRIDES, encoding="utf-8")
        settings = settings_factory(
            simulator_overrides=path,
            number_rate_limit="1/minute",
            result_cache=True,
            simulator_carrier_capacity="CMCC=100/hour,CTCC=60/hour",
        )
        subjects = _bulk_subjects()

        expected, actual = await self._both(settings, subjects, Scene.REAL)

        codes = {result.code for result in expected}
        assert codes == {OutcomeCode.OK, OutcomeCode.OPERATOR_LIMIT, OutcomeCode.FREQUENCY_LIMIT}
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert got == want, f"subject {index}: {subjects[index].value}"

    async def test_query_many_cache_hits_match(
        self, settings_factory: Callable[..., Settings]
    ) -> None:
        settings = settings_factory(result_cache=True)
        subjects = [_subject(f"135{index:08d}") for index in range(30)] * 2

        expected, actual = await self._both(settings, subjects, Scene.REAL)

        assert [result.cache_hit for result in actual] == [False] * 30 + [True] * 30
        assert actual == expected

    async def test_query_many_routes_same_named_connectors(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        def simulated(seed: str) -> SimulatedConnector:
            network = SimulatedNetwork(seed=seed)
            return SimulatedConnector(
                network, latency=LatencyProfile(DEFAULT_LATENCY_MEAN_MS, scale=0)
            )

        # Both are named "simulated", and their seeds give them different outcomes.
        routes = {Carrier.CMCC: simulated("seed-a"), Carrier.CTCC: simulated("seed-b")}
        subjects = [
            _subject(f"{prefix}{index:08d}") for index in range(60) for prefix in ("138", "189")
        ]

        single = [await make_engine(routes).query(subject, Scene.REAL) for subject in subjects]
        together = await make_engine(routes).query_many(subjects, Scene.REAL)

        assert [replace(result, latency_ms=0) for result in together] == [
            replace(result, latency_ms=0) for result in single
        ]

    async def test_query_many_waiting_connector_uses_query(
        self, make_engine: Callable[..., QueryEngine]
    ) -> None:
        connector = FakeConnector(state=NetworkState.SUSPENDED)
        engine = make_engine(connector)
        subjects = [_subject(f"138{index:08d}") for index in range(20)]

        results = await engine.query_many(subjects, Scene.REAL, concurrency=3)

        assert [result.number for result in results] == [subject.value for subject in subjects]
        assert {result.status for result in results} == {PhoneStatus.SHUTDOWN}
        assert len(connector.calls) == 20

    async def test_query_many_with_latency_uses_query(
        self, settings_factory: Callable[..., Settings]
    ) -> None:
        settings = settings_factory(simulator_latency_scale=0.001)
        engine = QueryEngine.from_settings(settings, clock=FrozenClock(START))
        subjects = [_subject(f"186{index:08d}") for index in range(10)]
        try:
            results = await engine.query_many(subjects, Scene.REAL)
            expected = [await engine.query(subject, Scene.REAL) for subject in subjects]
        finally:
            await engine.aclose()
        assert [result.status for result in results] == [result.status for result in expected]

    async def test_query_many_counts_metrics(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector("metered"), guard="1/minute")
        subjects = [_subject("13800000078")] * 3
        answered_before = TestMetrics._count("sms", "OK", "answered")
        limited_before = TestMetrics._count("sms", "RequestFrequencyLimit", "frequency_limit")

        await engine.query_many(subjects, Scene.SMS)

        assert TestMetrics._count("sms", "OK", "answered") == answered_before + 1
        assert (
            TestMetrics._count("sms", "RequestFrequencyLimit", "frequency_limit")
            == limited_before + 2
        )

    async def test_query_many_empty(self, make_engine: Callable[..., QueryEngine]) -> None:
        engine = make_engine(FakeConnector())
        assert await engine.query_many([], Scene.REAL) == []


class TestObserveMany:
    def test_matches_observe_in_a_loop(self) -> None:
        registry = CollectorRegistry()
        buckets = (0.005, 0.05, 0.1, 0.5)
        single = Histogram(
            "one_seconds", "one by one", ["connector"], buckets=buckets, registry=registry
        )
        bulk = Histogram(
            "bulk_seconds", "in bulk", ["connector"], buckets=buckets, registry=registry
        )
        for amount, count in [(0.003, 7), (0.07, 3), (0.5, 2), (9.0, 4), (0.05, 1)]:
            for _ in range(count):
                single.labels("simulated").observe(amount)
            observe_many(bulk.labels("simulated"), amount, count)

        def samples(name: str) -> dict[tuple[str, str], float]:
            return {
                (sample.name.removeprefix(name), sample.labels.get("le", "")): sample.value
                for metric in registry.collect()
                if metric.name == name
                for sample in metric.samples
                if not sample.name.endswith("_created")
            }

        expected, actual = samples("one_seconds"), samples("bulk_seconds")
        assert actual.keys() == expected.keys()
        for key, value in expected.items():
            assert actual[key] == pytest.approx(value)
