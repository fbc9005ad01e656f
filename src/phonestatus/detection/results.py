"""The engine's result for one number in one scene, and the outcome codes it carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from phonestatus.detection.scenes import Scene
from phonestatus.numbers import Carrier, PhoneStatus


class OutcomeCode(StrEnum):
    OK = "OK"
    OPERATOR_LIMIT = "OperatorLimit"
    FREQUENCY_LIMIT = "RequestFrequencyLimit"


# Not frozen: the engine builds one per number (a million in a large batch job),
# and a frozen dataclass's __init__ costs about half as much again. Treat it as
# read-only; ``dataclasses.replace`` makes a changed copy.
@dataclass(slots=True)
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
