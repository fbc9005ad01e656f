"""The simulated carrier network: the embedded default connector.

Every number has a line record derived from a keyed hash (HMAC-SHA256 with
``PHONESTATUS_SIMULATOR_SEED``) of the number, so the same number always
gets the same state while the population follows a configurable distribution.
An overrides CSV pins chosen numbers, and the MD5, SHA-256 and SM3 digests of
an overridden number return exactly what the number does. A digest of any
other number cannot be reversed, so it gets a line from the hash of the
digest itself.

On top of the deterministic network, the connector adds what a real
carrier shows: latency drawn per carrier from a log-normal distribution,
a per-carrier capacity above which lookups are refused, and injected faults.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import random
import struct
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from phonestatus.detection.overrides import Override, SimulatorConfigError
from phonestatus.detection.protocols import OutcomeKind, ProbeOutcome, ProbeSubject
from phonestatus.detection.scenes import NetworkState, Scene
from phonestatus.numbers import Carrier, Mask, digest, lookup_segment
from phonestatus.ratelimit import CarrierCapacity

CONNECTOR_NAME = "simulated"

# Share of numbers in each state. Most numbers are in service; the rest
# follow the order of magnitude list-cleaning customers report.
DEFAULT_DISTRIBUTION: dict[NetworkState, float] = {
    NetworkState.IN_SERVICE: 0.805,
    NetworkState.BUSY: 0.01,
    NetworkState.DETACHED: 0.04,
    NetworkState.PROBABLY_DETACHED: 0.01,
    NetworkState.SUSPENDED: 0.04,
    NetworkState.LOST: 0.005,
    NetworkState.SMS_BARRED: 0.01,
    NetworkState.VOICE_BARRED: 0.005,
    NetworkState.NEVER_ACTIVATED: 0.01,
    NetworkState.NOT_ALLOCATED: 0.05,
    NetworkState.UNKNOWN: 0.01,
    NetworkState.DEFECT: 0.005,
}
# Mean lookup latency per carrier in milliseconds. With a log-normal sigma
# of 0.6 the p99 is about 3.4 times the mean (1.5-2.0 s here), in line with
# the mean of about 0.5 s and p99 of 1-2.5 s the market leader publishes.
DEFAULT_LATENCY_MEAN_MS: dict[Carrier, float] = {
    Carrier.CMCC: 450.0,
    Carrier.CUCC: 500.0,
    Carrier.CTCC: 550.0,
    Carrier.CBN: 600.0,
}
DEFAULT_LATENCY_SIGMA = 0.6
DEFAULT_PORTED_SHARE = 0.03
DEFAULT_PRIVACY_SHARE = 0.01
# Carrier mix for digests that match no override (rough market shares).
DIGEST_CARRIER_SHARES: dict[Carrier, float] = {
    Carrier.CMCC: 0.57,
    Carrier.CUCC: 0.20,
    Carrier.CTCC: 0.21,
    Carrier.CBN: 0.02,
}
# States of numbers held by a subscriber: only these can be ported or be privacy numbers.
SUBSCRIBED_STATES = frozenset(
    {
        NetworkState.IN_SERVICE,
        NetworkState.BUSY,
        NetworkState.DETACHED,
        NetworkState.PROBABLY_DETACHED,
        NetworkState.SUSPENDED,
        NetworkState.LOST,
        NetworkState.SMS_BARRED,
        NetworkState.VOICE_BARRED,
    }
)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SimulatedLine:
    """The simulator's record of one number."""

    state: NetworkState
    basic_carrier: Carrier
    carrier: Carrier
    is_privacy_number: bool

    @property
    def is_ported(self) -> bool:
        return self.carrier is not self.basic_carrier


def parse_distribution(value: str) -> dict[NetworkState, float]:
    """Parse ``in_service=0.9,not_allocated=0.1`` (shares are normalised to sum to 1).

    An empty string gives ``DEFAULT_DISTRIBUTION``; states left out get no numbers.
    """
    if not value.strip():
        return dict(DEFAULT_DISTRIBUTION)
    shares: dict[NetworkState, float] = {}
    for part in filter(None, (piece.strip() for piece in value.split(","))):
        name, _, share = part.partition("=")
        try:
            state = NetworkState(name.strip().lower())
            shares[state] = float(share)
        except ValueError as exc:
            raise SimulatorConfigError(
                f"invalid simulator distribution entry {part!r}: expected <state>=<share> "
                f"with a state from {', '.join(NetworkState)}"
            ) from exc
    total = sum(shares.values())
    if total <= 0 or any(share < 0 for share in shares.values()):
        raise SimulatorConfigError(f"invalid simulator distribution {value!r}: shares must be >= 0")
    return {state: share / total for state, share in shares.items()}


def parse_latency_means(value: str) -> dict[Carrier, float]:
    """Parse ``CMCC=450,CUCC=500`` (milliseconds); carriers left out keep their default."""
    means = dict(DEFAULT_LATENCY_MEAN_MS)
    for part in filter(None, (piece.strip() for piece in value.split(","))):
        code, _, mean = part.partition("=")
        try:
            means[Carrier(code.strip().upper())] = float(mean)
        except ValueError as exc:
            raise SimulatorConfigError(
                f"invalid simulator latency entry {part!r}: expected <carrier>=<mean ms>"
            ) from exc
    return means


def _pick(shares: Mapping[T, float], draw: float) -> T:
    """Pick the choice whose cumulative share interval contains ``draw`` in [0, 1)."""
    total = 0.0
    last: T | None = None
    for choice, share in shares.items():
        total += share
        last = choice
        if draw < total:
            return choice
    assert last is not None
    return last


def _uniform(material: bytes, index: int) -> float:
    """Return the ``index``-th uniform draw in [0, 1) from a 32-byte hash."""
    chunk = material[index * 8 : index * 8 + 8]
    return int.from_bytes(chunk, "big") / 2**64


_FOUR_DRAWS = struct.Struct(">4Q")


class _Picker(Generic[T]):
    """``_pick`` over fixed shares: the same cumulative sums, found by bisection."""

    def __init__(self, shares: Mapping[T, float]) -> None:
        self._choices = list(shares)
        self._bounds: list[float] = []
        total = 0.0
        for share in shares.values():
            total += share
            self._bounds.append(total)

    def __call__(self, draw: float) -> T:
        return self._choices[min(bisect_right(self._bounds, draw), len(self._choices) - 1)]


class SimulatedNetwork:
    """The deterministic part of the simulator: one line record per number."""

    def __init__(
        self,
        *,
        seed: str,
        distribution: Mapping[NetworkState, float] | None = None,
        overrides: Mapping[str, Override] | None = None,
        ported_share: float = DEFAULT_PORTED_SHARE,
        privacy_share: float = DEFAULT_PRIVACY_SHARE,
    ) -> None:
        self._key = seed.encode()
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)
        self._distribution = dict(distribution or DEFAULT_DISTRIBUTION)
        self._overrides = dict(overrides or {})
        self._ported_share = ported_share
        self._privacy_share = privacy_share
        self._pick_state = _Picker(self._distribution)
        # Lines are values: one object per distinct line, not one per number.
        self._lines: dict[tuple[NetworkState, Carrier, Carrier, bool], SimulatedLine] = {}
        # Digests of the overridden numbers resolve back to them.
        self._by_digest: dict[tuple[Mask, str], str] = {
            (mask, digest(number, mask)): number
            for number in self._overrides
            for mask in (Mask.MD5, Mask.SHA256, Mask.SM3)
        }

    def resolve(self, subject: ProbeSubject) -> str | None:
        """Return the canonical number of ``subject`` when it is a number or the digest of an overridden one."""
        if subject.number is not None:
            return subject.number
        return self._by_digest.get((subject.mask, str(subject.digest)))

    def line_for(self, subject: ProbeSubject) -> tuple[str | None, SimulatedLine]:
        """Return the resolved number (or None) and the line record of ``subject``."""
        number = self.resolve(subject)
        if number is None:
            material = self._hash(subject.key)
            carrier_draw = _uniform(self._hash(f"carrier:{subject.key}"), 0)
            basic = _pick(DIGEST_CARRIER_SHARES, carrier_draw)
            return None, self._hashed_line(material, basic)

        material = self._hash(number)
        segment = lookup_segment(number)
        basic = segment.carrier if segment is not None else Carrier.CMCC
        override = self._overrides.get(number)
        if override is None:
            return number, self._hashed_line(material, basic)

        basic = override.basic_carrier or basic
        line = SimulatedLine(
            state=override.state,
            basic_carrier=basic,
            carrier=override.ported_to or basic,
            is_privacy_number=False,
        )
        return number, line

    def _hash(self, text: str) -> bytes:
        # A copy of a keyed HMAC object, not the one-shot hmac.digest, which
        # releases the interpreter lock even for short messages and then waits to
        # take it back whenever another thread (the gateway's recorder, the log
        # writer) is runnable. Copying skips deriving the key pads per number.
        mac = self._keyed.copy()
        mac.update(text.encode())
        return mac.digest()

    def _hashed_line(self, material: bytes, basic: Carrier) -> SimulatedLine:
        # The four draws _uniform(material, 0..3), unpacked at once.
        state_draw, port_draw, target_draw, privacy_draw = (
            value / 2**64 for value in _FOUR_DRAWS.unpack(material)
        )
        state = self._pick_state(state_draw)
        subscribed = state in SUBSCRIBED_STATES
        carrier = basic
        if subscribed and port_draw < self._ported_share:
            others = _OTHER_CARRIERS[basic]
            carrier = others[int(target_draw * len(others))]
        is_privacy = subscribed and privacy_draw < self._privacy_share
        key = (state, basic, carrier, is_privacy)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = SimulatedLine(
                state=state, basic_carrier=basic, carrier=carrier, is_privacy_number=is_privacy
            )
        return line


_OTHER_CARRIERS = {
    basic: [candidate for candidate in Carrier if candidate is not basic] for basic in Carrier
}


class Fault(StrEnum):
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Per-carrier log-normal latency; ``scale`` multiplies every draw (0: no delay)."""

    mean_ms: Mapping[Carrier, float]
    sigma: float = DEFAULT_LATENCY_SIGMA
    scale: float = 1.0

    def sample_seconds(self, carrier: Carrier, rng: random.Random) -> float:
        if self.scale == 0:
            return 0.0
        mean_seconds = self.mean_ms[carrier] / 1000
        # For a log-normal variable, mean = exp(mu + sigma^2 / 2).
        mu = math.log(mean_seconds) - self.sigma**2 / 2
        return rng.lognormvariate(mu, self.sigma) * self.scale


class SimulatedConnector:
    """The simulated network behind the ``Connector`` protocol."""

    name = CONNECTOR_NAME

    def __init__(
        self,
        network: SimulatedNetwork,
        *,
        latency: LatencyProfile,
        capacity: CarrierCapacity | None = None,
        fault_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= fault_rate <= 1:
            raise SimulatorConfigError(f"invalid fault rate {fault_rate}: expected 0 to 1")
        self.network = network
        self._latency = latency
        self._capacity = capacity
        self._fault_rate = fault_rate
        self._rng = rng or random.Random()

    async def probe(self, subject: ProbeSubject, *, scene: Scene, deadline: float) -> ProbeOutcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        number, line = self.network.line_for(subject)
        if subject.number is not None:
            number = None  # only a digest's resolved number is reported back

        if self._capacity is not None and not await self._capacity.allow(line.carrier):
            return self._outcome(OutcomeKind.REFUSED, "OperatorLimit", loop, started, number, line)

        fault = self._draw_fault()
        if fault is Fault.TIMEOUT:
            # The carrier never replies, so the lookup waits until the engine's deadline.
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            return self._outcome(OutcomeKind.FAILED, "Timeout", loop, started, number, line)
        delay = self._latency.sample_seconds(line.carrier, self._rng)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is Fault.ERROR:
            return self._outcome(OutcomeKind.FAILED, "SystemError", loop, started, number, line)

        return self._outcome(OutcomeKind.ANSWERED, "OK", loop, started, number, line)

    @property
    def answers_instantly(self) -> bool:
        """Whether no lookup waits: zero latency and no injected faults."""
        return self._latency.scale == 0 and self._fault_rate == 0

    async def probe_many(
        self, subjects: Sequence[ProbeSubject], *, scene: Scene
    ) -> list[ProbeOutcome]:
        """Return ``probe``'s outcome for each subject, in order, without any delay.

        Raises ``RuntimeError`` unless ``answers_instantly``: with latency or
        faults only ``probe`` models the waiting and the timeouts.
        """
        if not self.answers_instantly:
            raise RuntimeError("probe_many needs zero latency and no faults; use probe")

        lines = [self.network.line_for(subject) for subject in subjects]
        # Capacity counts every lookup, in order, as sequential probes would: each
        # carrier's first `granted` lookups fit, the rest are refused. One take per
        # carrier replaces a limiter hit per number.
        granted: dict[Carrier, int] = {}
        if self._capacity is not None:
            lookups_per_carrier = Counter(line.carrier for _, line in lines)
            for carrier, count in lookups_per_carrier.items():
                granted[carrier] = await self._capacity.take(carrier, count)

        # Outcomes are values too: a number given as such is not echoed back (only
        # a digest's resolved number is), so equal lines share one outcome.
        shared: dict[tuple[SimulatedLine, bool], ProbeOutcome] = {}
        outcomes = []
        for subject, (number, line) in zip(subjects, lines, strict=True):
            allowed = True
            if self._capacity is not None:
                allowed = granted[line.carrier] > 0
                granted[line.carrier] -= 1
            if subject.number is None:
                outcomes.append(self._instant_outcome(line, allowed, number))
                continue
            outcome = shared.get((line, allowed))
            if outcome is None:
                outcome = shared[line, allowed] = self._instant_outcome(line, allowed, None)
            outcomes.append(outcome)
        return outcomes

    async def aclose(self) -> None:
        return None

    def _draw_fault(self) -> Fault | None:
        if self._fault_rate == 0 or self._rng.random() >= self._fault_rate:
            return None
        return Fault.TIMEOUT if self._rng.random() < 0.5 else Fault.ERROR

    def _instant_outcome(
        self, line: SimulatedLine, allowed: bool, number: str | None
    ) -> ProbeOutcome:
        kind = OutcomeKind.ANSWERED if allowed else OutcomeKind.REFUSED
        return self._outcome_of(kind, "OK" if allowed else "OperatorLimit", 0, number, line)

    def _outcome(
        self,
        kind: OutcomeKind,
        raw_code: str,
        loop: asyncio.AbstractEventLoop,
        started: float,
        number: str | None,
        line: SimulatedLine,
    ) -> ProbeOutcome:
        latency_ms = round((loop.time() - started) * 1000)
        return self._outcome_of(kind, raw_code, latency_ms, number, line)

    def _outcome_of(
        self,
        kind: OutcomeKind,
        raw_code: str,
        latency_ms: int,
        number: str | None,
        line: SimulatedLine,
    ) -> ProbeOutcome:
        answered = kind is OutcomeKind.ANSWERED
        return ProbeOutcome(
            kind=kind,
            connector=self.name,
            raw_code=raw_code,
            latency_ms=latency_ms,
            state=line.state if answered else None,
            carrier=line.carrier,
            basic_carrier=line.basic_carrier,
            is_ported=line.is_ported,
            is_privacy_number=line.is_privacy_number if answered else None,
            number=number,
        )
