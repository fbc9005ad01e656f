"""The simulated network: keyed-hash lines, overrides, latency, capacity and faults."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonestatus.detection.overrides import SimulatorConfigError, load_overrides
from phonestatus.detection.protocols import OutcomeKind, ProbeSubject
from phonestatus.detection.scenes import (
    SCENE_VALUES,
    STATUS_SCENES,
    TABLE_SCENES,
    TELECOM_WITHHELD,
    NetworkState,
    Scene,
    read_state,
)
from phonestatus.detection.simulated import (
    DEFAULT_LATENCY_MEAN_MS,
    LatencyProfile,
    SimulatedConnector,
    SimulatedNetwork,
    parse_distribution,
    parse_latency_means,
)
from phonestatus.numbers import Carrier, Mask, digest
from phonestatus.ratelimit import CarrierCapacity, RateLimitStorage, parse_limit

SEED = "test-seed"
NO_LATENCY = LatencyProfile(mean_ms=DEFAULT_LATENCY_MEAN_MS, scale=0.0)
OVERRIDES_CSV = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
+86 139-0000-0001,SHUTDOWN,,,
13900000002,NOT_EXIST,,,
13900000003,,,sms,
13900000004,NORMAL,,voice,
13900000005,NORMAL,,,CTCC
13900000006,lost,,,
13900000007,POWER_OFF,CUCC,,
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _numbers(count: int, prefix: str = "138") -> list[str]:
    return [f"{prefix}{index:08d}" for index in range(count)]


class TestSimulatedNetwork:
    def test_line_for_is_deterministic(self) -> None:
        first = SimulatedNetwork(seed=SEED)
        second = SimulatedNetwork(seed=SEED)
        subjects = [ProbeSubject.for_number(number) for number in _numbers(200)]
        assert [first.line_for(s) for s in subjects] == [second.line_for(s) for s in subjects]

    def test_line_for_depends_on_seed(self) -> None:
        subjects = [ProbeSubject.for_number(number) for number in _numbers(200)]
        first = [SimulatedNetwork(seed="a").line_for(s)[1].state for s in subjects]
        second = [SimulatedNetwork(seed="b").line_for(s)[1].state for s in subjects]
        assert first != second

    def test_line_for_default_distribution_is_realistic(self) -> None:
        network = SimulatedNetwork(seed=SEED)
        states = Counter(
            network.line_for(ProbeSubject.for_number(number))[1].state
            for number in _numbers(20_000)
        )
        share = {state: count / 20_000 for state, count in states.items()}
        assert 0.77 < share[NetworkState.IN_SERVICE] < 0.84
        assert 0.03 < share[NetworkState.NOT_ALLOCATED] < 0.07
        assert 0.02 < share[NetworkState.SUSPENDED] < 0.06
        assert share[NetworkState.BUSY] < 0.02
        assert share[NetworkState.UNKNOWN] < 0.02

    def test_line_for_configured_distribution(self) -> None:
        network = SimulatedNetwork(seed=SEED, distribution=parse_distribution("not_allocated=1"))
        states = {network.line_for(ProbeSubject.for_number(n))[1].state for n in _numbers(100)}
        assert states == {NetworkState.NOT_ALLOCATED}

    def test_line_for_basic_carrier_from_segment(self) -> None:
        network = SimulatedNetwork(seed=SEED, ported_share=0.0)
        _, line = network.line_for(ProbeSubject.for_number("18912345678"))
        assert line.basic_carrier is Carrier.CTCC
        assert line.carrier is Carrier.CTCC

    def test_line_for_ports_only_subscribed_numbers(self) -> None:
        network = SimulatedNetwork(seed=SEED, ported_share=1.0)
        for number in _numbers(300):
            _, line = network.line_for(ProbeSubject.for_number(number))
            subscribed = line.state not in {
                NetworkState.NOT_ALLOCATED,
                NetworkState.NEVER_ACTIVATED,
                NetworkState.UNKNOWN,
                NetworkState.DEFECT,
            }
            assert line.is_ported == subscribed

    def test_line_for_unknown_digest_is_deterministic(self) -> None:
        network = SimulatedNetwork(seed=SEED)
        subject = ProbeSubject(number=None, digest="0" * 32, mask=Mask.MD5)
        assert network.line_for(subject) == network.line_for(subject)
        assert network.line_for(subject)[0] is None

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    def test_line_for_override_digest_matches_number(self, tmp_path: Path, mask: Mask) -> None:
        overrides = load_overrides(_write(tmp_path, OVERRIDES_CSV))
        network = SimulatedNetwork(seed=SEED, overrides=overrides)
        plain = network.line_for(ProbeSubject.for_number("13900000005"))
        hashed_subject = ProbeSubject(number=None, digest=digest("13900000005", mask), mask=mask)
        assert network.line_for(hashed_subject) == plain


class TestLoadOverrides:
    def test_load_overrides_reads_every_column(self, tmp_path: Path) -> None:
        overrides = load_overrides(_write(tmp_path, OVERRIDES_CSV))
        assert overrides["13800138000"].state is NetworkState.IN_SERVICE
        assert overrides["13900000001"].state is NetworkState.SUSPENDED
        assert overrides["13900000002"].state is NetworkState.NOT_ALLOCATED
        assert overrides["13900000003"].state is NetworkState.SMS_BARRED
        assert overrides["13900000004"].state is NetworkState.VOICE_BARRED
        assert overrides["13900000005"].ported_to is Carrier.CTCC
        assert overrides["13900000006"].state is NetworkState.LOST
        assert overrides["13900000007"].basic_carrier is Carrier.CUCC

    @pytest.mark.parametrize(
        ("row", "fragment"),
        [
            ("13800138000,SLEEPING,,,", "invalid status"),
            ("13800138000,NORMAL,ORANGE,,", "invalid carrier"),
            ("13800138000,NORMAL,,data,", "invalid barred"),
            ("13800138000,NOT_EXIST,,sms,", "barred=sms needs status"),
            ("13800138000,NORMAL,,,XX", "invalid ported_to"),
            ("12345,NORMAL,,,", "overrides.csv:2"),
        ],
    )
    def test_load_overrides_invalid_row(self, tmp_path: Path, row: str, fragment: str) -> None:
        path = _write(tmp_path, "number,status,carrier,barred,ported_to\n" + row + "\n")
        with pytest.raises(SimulatorConfigError) as caught:
            load_overrides(path)
        assert fragment in str(caught.value)

    def test_load_overrides_missing_column(self, tmp_path: Path) -> None:
        with pytest.raises(SimulatorConfigError) as caught:
            load_overrides(_write(tmp_path, "number,status\n13800138000,NORMAL\n"))
        assert "carrier" in str(caught.value)


class TestParseSettings:
    def test_parse_distribution_normalises(self) -> None:
        shares = parse_distribution("in_service=3,not_allocated=1")
        assert shares == {NetworkState.IN_SERVICE: 0.75, NetworkState.NOT_ALLOCATED: 0.25}

    @pytest.mark.parametrize("value", ["asleep=1", "in_service=lots", "in_service=0"])
    def test_parse_distribution_invalid(self, value: str) -> None:
        with pytest.raises(SimulatorConfigError):
            parse_distribution(value)

    def test_parse_latency_means_keeps_defaults(self) -> None:
        means = parse_latency_means("CTCC=900")
        assert means[Carrier.CTCC] == 900.0
        assert means[Carrier.CMCC] == DEFAULT_LATENCY_MEAN_MS[Carrier.CMCC]

    def test_parse_latency_means_invalid(self) -> None:
        with pytest.raises(SimulatorConfigError):
            parse_latency_means("MARS=100")


class TestLatencyProfile:
    def test_sample_seconds_matches_published_shape(self) -> None:
        profile = LatencyProfile(mean_ms=DEFAULT_LATENCY_MEAN_MS)
        rng = random.Random(7)
        samples = sorted(profile.sample_seconds(Carrier.CUCC, rng) for _ in range(20_000))
        mean = sum(samples) / len(samples)
        p99 = samples[int(len(samples) * 0.99)]
        assert 0.45 < mean < 0.55
        assert 1.0 < p99 < 2.5

    def test_sample_seconds_scales(self) -> None:
        base = LatencyProfile(mean_ms=DEFAULT_LATENCY_MEAN_MS)
        half = LatencyProfile(mean_ms=DEFAULT_LATENCY_MEAN_MS, scale=0.5)
        first = base.sample_seconds(Carrier.CMCC, random.Random(1))
        second = half.sample_seconds(Carrier.CMCC, random.Random(1))
        assert second == pytest.approx(first / 2)

    def test_sample_seconds_zero_scale(self) -> None:
        assert NO_LATENCY.sample_seconds(Carrier.CBN, random.Random(1)) == 0.0


@pytest.fixture
async def storage() -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(None)
    yield storage
    await storage.aclose()


class TestSimulatedConnector:
    async def test_probe_answers_line(self, tmp_path: Path) -> None:
        overrides = load_overrides(_write(tmp_path, OVERRIDES_CSV))
        connector = SimulatedConnector(
            SimulatedNetwork(seed=SEED, overrides=overrides), latency=NO_LATENCY
        )
        deadline = asyncio.get_running_loop().time() + 3
        outcome = await connector.probe(
            ProbeSubject.for_number("13900000005"), scene=Scene.REAL, deadline=deadline
        )
        assert outcome.kind is OutcomeKind.ANSWERED
        assert outcome.state is NetworkState.IN_SERVICE
        assert outcome.carrier is Carrier.CTCC
        assert outcome.basic_carrier is Carrier.CMCC
        assert outcome.is_ported is True
        assert outcome.connector == "simulated"
        assert outcome.raw_code == "OK"

    async def test_probe_over_capacity_refuses(self, storage: RateLimitStorage) -> None:
        limits = {Carrier.CUCC: parse_limit("capacity", "1/hour")}
        connector = SimulatedConnector(
            SimulatedNetwork(seed=SEED, ported_share=0.0),
            latency=NO_LATENCY,
            capacity=CarrierCapacity(limits, storage=storage),
        )
        deadline = asyncio.get_running_loop().time() + 3
        subject = ProbeSubject.for_number("13012345678")
        first = await connector.probe(subject, scene=Scene.REAL, deadline=deadline)
        second = await connector.probe(subject, scene=Scene.REAL, deadline=deadline)
        assert first.kind is OutcomeKind.ANSWERED
        assert second.kind is OutcomeKind.REFUSED
        assert second.raw_code == "OperatorLimit"
        assert second.state is None

    async def test_probe_faults_at_full_rate(self) -> None:
        connector = SimulatedConnector(
            SimulatedNetwork(seed=SEED),
            latency=NO_LATENCY,
            fault_rate=1.0,
            rng=random.Random(3),
        )
        # A deadline already passed: injected timeouts return at once.
        deadline = asyncio.get_running_loop().time()
        outcomes = [
            await connector.probe(
                ProbeSubject.for_number(number), scene=Scene.REAL, deadline=deadline
            )
            for number in _numbers(40)
        ]
        assert {outcome.kind for outcome in outcomes} == {OutcomeKind.FAILED}
        assert {outcome.raw_code for outcome in outcomes} == {"Timeout", "SystemError"}

    async def test_probe_no_faults_at_zero_rate(self) -> None:
        connector = SimulatedConnector(SimulatedNetwork(seed=SEED), latency=NO_LATENCY)
        deadline = asyncio.get_running_loop().time() + 3
        outcomes = [
            await connector.probe(
                ProbeSubject.for_number(number), scene=Scene.SMS, deadline=deadline
            )
            for number in _numbers(100)
        ]
        assert {outcome.kind for outcome in outcomes} == {OutcomeKind.ANSWERED}

    def test_init_invalid_fault_rate(self) -> None:
        with pytest.raises(SimulatorConfigError):
            SimulatedConnector(SimulatedNetwork(seed=SEED), latency=NO_LATENCY, fault_rate=2)


SEGMENT_PREFIXES = ["130", "133", "138", "145", "166", "173", "180", "189", "192", "199"]


class TestSimulatedProperties:
    @settings(max_examples=300, deadline=None)
    @given(
        prefix=st.sampled_from(SEGMENT_PREFIXES),
        rest=st.integers(min_value=0, max_value=99_999_999),
        seed=st.text(min_size=1, max_size=12),
    )
    def test_line_for_reads_within_scene_sets(self, prefix: str, rest: int, seed: str) -> None:
        network = SimulatedNetwork(seed=seed)
        number, line = network.line_for(ProbeSubject.for_number(f"{prefix}{rest:08d}"))
        assert number == f"{prefix}{rest:08d}"
        for scene in TABLE_SCENES:
            answer = read_state(line.state, scene, line.carrier)
            if answer.scene_status is not None:
                assert answer.scene_status in SCENE_VALUES[scene]
            if line.carrier is Carrier.CTCC and scene in STATUS_SCENES:
                assert answer.status not in TELECOM_WITHHELD
