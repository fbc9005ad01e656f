"""Scenes and the one table that maps a network state to each scene's value.

A scene is the question an API action asks: the status family
(PhoneNumberStatusForReal/Sms/Voice/Account/Public), the legacy
DescribePhoneNumberStatus, the empty-number prediction, the privacy-number
check and attribution. Each scene answers only the values its action
documents:

=========  ================================================================
scene      values
=========  ================================================================
REAL       NORMAL SHUTDOWN POWER_OFF NOT_EXIST BUSY SUSPECTED_POWER_OFF DEFECT UNKNOWN
SMS        NORMAL SHUTDOWN POWER_OFF NOT_EXIST DEFECT UNKNOWN
VOICE      NORMAL SHUTDOWN POWER_OFF NOT_EXIST SUSPECTED_POWER_OFF DEFECT UNKNOWN
ACCOUNT    NORMAL SHUTDOWN POWER_OFF NOT_EXIST DEFECT UNKNOWN
PUBLIC     NORMAL SHUTDOWN POWER_OFF NOT_EXIST SUSPECTED_POWER_OFF BUSY UNKNOWN
LEGACY     NORMAL SHUTDOWN NOT_EXIST (no value: the action answers isp.UNKNOWN)
EMPTY      EMPTY NORMAL SUSPECT_EMPTY UNKNOWN
=========  ================================================================

China Telecom stopped reporting BUSY, POWER_OFF and SUSPECTED_POWER_OFF, so
its numbers read the ``TELECOM_OVERRIDES`` cells instead. China Broadnet
numbers are served only by the PUBLIC and ATTRIBUTE scenes; every other
scene answers ``OperatorLimit`` for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from phonestatus.numbers import Carrier, PhoneStatus


class Scene(StrEnum):
    REAL = "real"
    SMS = "sms"
    VOICE = "voice"
    ACCOUNT = "account"
    PUBLIC = "public"
    LEGACY = "legacy"
    ATTRIBUTE = "attribute"
    VIRTUAL = "virtual"
    EMPTY = "empty"


class NetworkState(StrEnum):
    """State of a number in the carrier's core network."""

    IN_SERVICE = "in_service"  # allocated, active, handset attached and idle
    BUSY = "busy"  # attached and in a call
    DETACHED = "detached"  # handset off or out of coverage
    PROBABLY_DETACHED = "probably_detached"  # no recent contact with the network
    SUSPENDED = "suspended"  # barred for arrears
    LOST = "lost"  # reported lost (挂失)
    SMS_BARRED = "sms_barred"  # functional suspension of SMS only (功能性停机)
    VOICE_BARRED = "voice_barred"  # functional suspension of voice only
    NEVER_ACTIVATED = "never_activated"  # allocated, SIM never opened
    NOT_ALLOCATED = "not_allocated"  # no subscriber has the number
    UNKNOWN = "unknown"  # the network gave no determinable state
    DEFECT = "defect"  # the number is invalid in the network


class EmptyNumberStatus(StrEnum):
    """Data.Status of DescribeEmptyNumber."""

    EMPTY = "EMPTY"
    NORMAL = "NORMAL"
    SUSPECT_EMPTY = "SUSPECT_EMPTY"
    UNKNOWN = "UNKNOWN"


# Status family scenes whose wire value is a PhoneStatus.
STATUS_SCENES = (Scene.REAL, Scene.SMS, Scene.VOICE, Scene.ACCOUNT, Scene.PUBLIC)
# Scenes with a column in the table.
TABLE_SCENES = (*STATUS_SCENES, Scene.LEGACY, Scene.EMPTY)

_S = PhoneStatus
_E = EmptyNumberStatus

SCENE_VALUES: dict[Scene, frozenset[str]] = {
    Scene.REAL: frozenset(_S),
    Scene.SMS: frozenset(
        {_S.NORMAL, _S.SHUTDOWN, _S.POWER_OFF, _S.NOT_EXIST, _S.DEFECT, _S.UNKNOWN}
    ),
    Scene.VOICE: frozenset(
        {
            _S.NORMAL,
            _S.SHUTDOWN,
            _S.POWER_OFF,
            _S.NOT_EXIST,
            _S.SUSPECTED_POWER_OFF,
            _S.DEFECT,
            _S.UNKNOWN,
        }
    ),
    Scene.ACCOUNT: frozenset(
        {_S.NORMAL, _S.SHUTDOWN, _S.POWER_OFF, _S.NOT_EXIST, _S.DEFECT, _S.UNKNOWN}
    ),
    Scene.PUBLIC: frozenset(
        {
            _S.NORMAL,
            _S.SHUTDOWN,
            _S.POWER_OFF,
            _S.NOT_EXIST,
            _S.SUSPECTED_POWER_OFF,
            _S.BUSY,
            _S.UNKNOWN,
        }
    ),
    Scene.LEGACY: frozenset({_S.NORMAL, _S.SHUTDOWN, _S.NOT_EXIST}),
    Scene.EMPTY: frozenset(_E),
}

# Values China Telecom no longer reports in any scene.
TELECOM_WITHHELD = frozenset({_S.BUSY, _S.POWER_OFF, _S.SUSPECTED_POWER_OFF})

# Scenes that serve China Broadnet numbers; the rest return OperatorLimit.
BROADNET_SCENES = frozenset({Scene.PUBLIC, Scene.ATTRIBUTE})

Cell = str | None


def _row(
    real: str, sms: str, voice: str, account: str, public: str, legacy: Cell, empty: str
) -> dict[Scene, Cell]:
    return {
        Scene.REAL: real,
        Scene.SMS: sms,
        Scene.VOICE: voice,
        Scene.ACCOUNT: account,
        Scene.PUBLIC: public,
        Scene.LEGACY: legacy,
        Scene.EMPTY: empty,
    }


# The mapping. Row order matters for ``state_for``: the first row whose cell
# matches a scene's value is the state an upstream value maps back to.
# A None LEGACY cell means the legacy action has no value for the state.
# PROBABLY_DETACHED reads POWER_OFF where a scene has no "suspected" value.
# fmt: off
SCENE_TABLE: dict[NetworkState, dict[Scene, Cell]] = {
    #                                    REAL                    SMS            VOICE                   ACCOUNT        PUBLIC                  LEGACY         EMPTY
    NetworkState.IN_SERVICE:        _row(_S.NORMAL,              _S.NORMAL,     _S.NORMAL,              _S.NORMAL,     _S.NORMAL,              _S.NORMAL,     _E.NORMAL),
    NetworkState.BUSY:              _row(_S.BUSY,                _S.NORMAL,     _S.NORMAL,              _S.NORMAL,     _S.BUSY,                _S.NORMAL,     _E.NORMAL),
    NetworkState.DETACHED:          _row(_S.POWER_OFF,           _S.POWER_OFF,  _S.POWER_OFF,           _S.POWER_OFF,  _S.POWER_OFF,           _S.NORMAL,     _E.NORMAL),
    NetworkState.PROBABLY_DETACHED: _row(_S.SUSPECTED_POWER_OFF, _S.POWER_OFF,  _S.SUSPECTED_POWER_OFF, _S.POWER_OFF,  _S.SUSPECTED_POWER_OFF, _S.NORMAL,     _E.NORMAL),
    NetworkState.SUSPENDED:         _row(_S.SHUTDOWN,            _S.SHUTDOWN,   _S.SHUTDOWN,            _S.SHUTDOWN,   _S.SHUTDOWN,            _S.SHUTDOWN,   _E.SUSPECT_EMPTY),
    NetworkState.LOST:              _row(_S.SHUTDOWN,            _S.SHUTDOWN,   _S.SHUTDOWN,            _S.SHUTDOWN,   _S.SHUTDOWN,            _S.SHUTDOWN,   _E.NORMAL),
    NetworkState.SMS_BARRED:        _row(_S.NORMAL,              _S.SHUTDOWN,   _S.NORMAL,              _S.NORMAL,     _S.NORMAL,              _S.NORMAL,     _E.NORMAL),
    NetworkState.VOICE_BARRED:      _row(_S.NORMAL,              _S.NORMAL,     _S.SHUTDOWN,            _S.NORMAL,     _S.NORMAL,              _S.NORMAL,     _E.NORMAL),
    NetworkState.NEVER_ACTIVATED:   _row(_S.POWER_OFF,           _S.POWER_OFF,  _S.POWER_OFF,           _S.POWER_OFF,  _S.POWER_OFF,           _S.NOT_EXIST,  _E.SUSPECT_EMPTY),
    NetworkState.NOT_ALLOCATED:     _row(_S.NOT_EXIST,           _S.NOT_EXIST,  _S.NOT_EXIST,           _S.NOT_EXIST,  _S.NOT_EXIST,           _S.NOT_EXIST,  _E.EMPTY),
    NetworkState.UNKNOWN:           _row(_S.UNKNOWN,             _S.UNKNOWN,    _S.UNKNOWN,             _S.UNKNOWN,    _S.UNKNOWN,             None,          _E.UNKNOWN),
    NetworkState.DEFECT:            _row(_S.DEFECT,              _S.DEFECT,     _S.DEFECT,              _S.DEFECT,     _S.UNKNOWN,             None,          _E.SUSPECT_EMPTY),
}

# China Telecom cells that differ from the table above: a handset that is
# off or busy reads as in service, and a never-opened SIM as not existing.
TELECOM_OVERRIDES: dict[NetworkState, dict[Scene, Cell]] = {
    NetworkState.BUSY:              {Scene.REAL: _S.NORMAL, Scene.PUBLIC: _S.NORMAL},
    NetworkState.DETACHED:          {scene: _S.NORMAL for scene in STATUS_SCENES},
    NetworkState.PROBABLY_DETACHED: {scene: _S.NORMAL for scene in STATUS_SCENES},
    NetworkState.NEVER_ACTIVATED:   {scene: _S.NOT_EXIST for scene in STATUS_SCENES},
}
# fmt: on


@dataclass(frozen=True, slots=True)
class SceneAnswer:
    """A network state read in one scene.

    ``scene_status`` is the scene's wire value (None for ATTRIBUTE and
    VIRTUAL, and for a LEGACY state with no value). ``status`` is the
    scene's value as a ``PhoneStatus`` for the status family and LEGACY, and
    the REAL reading of the same state for EMPTY and VIRTUAL.
    """

    status: PhoneStatus | None
    scene_status: str | None


def cell(state: NetworkState, scene: Scene, carrier: Carrier | None) -> Cell:
    """Return the table cell for ``state`` in ``scene`` (a TABLE_SCENES member)."""
    if carrier is Carrier.CTCC:
        override = TELECOM_OVERRIDES.get(state, {})
        if scene in override:
            return override[scene]
    return SCENE_TABLE[state][scene]


def _compute_answer(state: NetworkState, scene: Scene, carrier: Carrier | None) -> SceneAnswer:
    if scene is Scene.ATTRIBUTE:
        return SceneAnswer(status=None, scene_status=None)

    real = PhoneStatus(str(cell(state, Scene.REAL, carrier)))
    if scene is Scene.VIRTUAL:
        return SceneAnswer(status=real, scene_status=None)
    if scene is Scene.EMPTY:
        return SceneAnswer(status=real, scene_status=cell(state, scene, carrier))

    value = cell(state, scene, carrier)
    if value is None:
        return SceneAnswer(status=PhoneStatus.UNKNOWN, scene_status=None)
    return SceneAnswer(status=PhoneStatus(value), scene_status=value)


# Every reading computed once, because the engine reads one per query.
_ANSWERS: dict[tuple[NetworkState, Scene, Carrier | None], SceneAnswer] = {
    (state, scene, carrier): _compute_answer(state, scene, carrier)
    for state in NetworkState
    for scene in Scene
    for carrier in (*Carrier, None)
}


def read_state(state: NetworkState | None, scene: Scene, carrier: Carrier | None) -> SceneAnswer:
    """Map a network state (None: no usable response) to ``scene``'s value for ``carrier``."""
    effective = NetworkState.UNKNOWN if state is None else state
    return _ANSWERS[effective, scene, carrier]


def state_for(scene: Scene, value: str) -> NetworkState | None:
    """Return the first state that ``scene`` reads as ``value``, or None for a foreign value.

    Upstream connectors return a scene's value. This turns the value back into
    a state, so the engine maps every connector the same way.
    """
    column = Scene.REAL if scene not in TABLE_SCENES else scene
    for state, row in SCENE_TABLE.items():
        if row[column] == value:
            return state
    return None
