"""Detection: decide a number's status through a carrier network, real or simulated.

Callers build a ``ProbeSubject`` from user input (validation happens there),
then ask ``QueryEngine.query(subject, scene)``. See ``engine`` for the steps
and ``scenes`` for how a network state reads in each scene.
"""

from phonestatus.detection.engine import OutcomeCode, QueryEngine, QueryResult
from phonestatus.detection.protocols import (
    Connector,
    ConnectorError,
    OutcomeKind,
    ProbeOutcome,
    ProbeSubject,
)
from phonestatus.detection.scenes import NetworkState, Scene

__all__ = [
    "Connector",
    "ConnectorError",
    "NetworkState",
    "OutcomeCode",
    "OutcomeKind",
    "ProbeOutcome",
    "ProbeSubject",
    "QueryEngine",
    "QueryResult",
    "Scene",
]
