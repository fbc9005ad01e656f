"""Detection: decide a number's status through a carrier network, real or simulated.

Callers build a ``ProbeSubject`` from user input (validation happens there),
then ask ``QueryEngine.query(subject, scene)``. See ``engine`` for the steps
and ``scenes`` for how a network state reads in each scene.
"""

from phonestatus.detection.engine import QueryEngine
from phonestatus.detection.protocols import (
    BulkConnector,
    Connector,
    ConnectorError,
    OutcomeKind,
    ProbeOutcome,
    ProbeSubject,
)
from phonestatus.detection.results import OutcomeCode, QueryResult
from phonestatus.detection.scenes import NetworkState, Scene

__all__ = [
    "BulkConnector",
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
