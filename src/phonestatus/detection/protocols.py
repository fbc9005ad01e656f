"""The connector boundary: the lookup the engine sends to a carrier network and the outcome it gets back.

A ``Connector`` answers one ``ProbeSubject`` with one ``ProbeOutcome``
(a ``BulkConnector`` may also answer many in one call):

* ``ProbeOutcome.answered``: the network returned a state for the number;
* ``ProbeOutcome.refused``: the carrier rate-limited or rejected the lookup
  (becomes ``OperatorLimit``);
* ``ProbeOutcome.failed``: a timeout, transport error or unusable answer
  (becomes UNKNOWN and is never billed).

Connectors translate their own errors into ``failed`` outcomes. The engine
still guards against ``ConnectorError`` and ``TimeoutError`` so that a
carrier failure never reaches the caller as an exception.

Exceptions::

    ConnectorError        a connector could not produce an outcome
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from phonestatus.detection.scenes import NetworkState, Scene
from phonestatus.numbers import Carrier, Mask, digest, normalize_digest, parse_mobile


class ConnectorError(Exception):
    """A connector could not produce an outcome (the engine turns it into UNKNOWN)."""

    def __init__(self, connector: str, raw_code: str, message: str) -> None:
        self.connector = connector
        self.raw_code = raw_code
        super().__init__(f"connector {connector} failed with {raw_code}: {message}")


@dataclass(frozen=True, slots=True)
class ProbeSubject:
    """A canonical 11-digit number, or a lowercase hex digest of one with its mask."""

    number: str | None
    digest: str | None
    mask: Mask

    def __post_init__(self) -> None:
        if (self.number is None) == (self.digest is None):
            raise ValueError("ProbeSubject needs exactly one of number and digest")
        if self.number is not None and self.mask is not Mask.NORMAL:
            raise ValueError(f"a plain number needs mask NORMAL, got {self.mask.value}")
        if self.digest is not None and self.mask is Mask.NORMAL:
            raise ValueError("a digest needs mask MD5, SHA256 or SM3, got NORMAL")

    @classmethod
    def from_input(cls, text: str, mask: Mask) -> ProbeSubject:
        """Parse user input under ``mask``.

        Raises ``NumberParseError`` for a malformed plain number and
        ``DigestError`` for a digest that does not fit its mask.
        """
        if mask is Mask.NORMAL:
            return cls(number=parse_mobile(text).digits, digest=None, mask=mask)
        return cls(number=None, digest=normalize_digest(text, mask), mask=mask)

    @classmethod
    def for_number(cls, number: str) -> ProbeSubject:
        """Wrap a canonical number; a plain number with NORMAL always passes the checks.

        Built without ``__init__``: batch jobs make one per number, and the
        checks doubled the cost.
        """
        subject = object.__new__(cls)
        object.__setattr__(subject, "number", number)
        object.__setattr__(subject, "digest", None)
        object.__setattr__(subject, "mask", Mask.NORMAL)
        return subject

    @property
    def value(self) -> str:
        """The number, or the digest as normalised: what the API echoes back."""
        return self.number if self.number is not None else str(self.digest)

    @property
    def key(self) -> str:
        """Identity for rate limits and caches: ``NORMAL:<digits>`` or ``<MASK>:<hex>``."""
        return f"{self.mask.value}:{self.value}"

    def matches(self, number: str) -> bool:
        """Return whether this subject denotes ``number`` (a canonical 11-digit string)."""
        if self.number is not None:
            return self.number == number
        return digest(number, self.mask) == self.digest


class OutcomeKind(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """Outcome of one connector lookup.

    ``carrier`` is the carrier serving the number now (after porting) and
    ``basic_carrier`` the segment owner; either is None when the connector
    could not tell. ``number`` is the canonical number when the connector
    resolved a digest to it (the simulator does so for its overrides).
    ``province``/``city`` come from connectors that return attribution
    themselves (the upstream connector does for digests).
    """

    kind: OutcomeKind
    connector: str
    raw_code: str
    latency_ms: int
    state: NetworkState | None = None
    carrier: Carrier | None = None
    basic_carrier: Carrier | None = None
    is_ported: bool | None = None
    is_privacy_number: bool | None = None
    number: str | None = None
    province: str | None = None
    city: str | None = None

    @property
    def is_answered(self) -> bool:
        return self.kind is OutcomeKind.ANSWERED


class Connector(Protocol):
    """A carrier network, real or simulated.

    ``probe`` returns within ``deadline`` (an ``asyncio`` loop time in
    seconds) or is cancelled by the engine. The ``scene`` lets upstream
    connectors call the matching action. The simulator returns the same
    network state for every scene, and the engine maps it.
    """

    name: str

    async def probe(
        self, subject: ProbeSubject, *, scene: Scene, deadline: float
    ) -> ProbeOutcome: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BulkConnector(Protocol):
    """A connector that can also look up many subjects in one call.

    ``probe_many`` returns, in order, what ``probe`` would return for each
    subject. The engine uses it only while ``answers_instantly`` is true,
    because then no lookup waits for the network and none can time out.
    """

    name: str

    @property
    def answers_instantly(self) -> bool: ...

    async def probe(
        self, subject: ProbeSubject, *, scene: Scene, deadline: float
    ) -> ProbeOutcome: ...

    async def probe_many(
        self, subjects: Sequence[ProbeSubject], *, scene: Scene
    ) -> list[ProbeOutcome]: ...

    async def aclose(self) -> None: ...
