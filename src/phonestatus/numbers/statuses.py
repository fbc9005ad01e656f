"""Status and carrier vocabularies, with Chinese and English labels, and the billable rule."""

from __future__ import annotations

from enum import StrEnum

RESPONSE_CODE_OK = "OK"


class PhoneStatus(StrEnum):
    NORMAL = "NORMAL"
    SHUTDOWN = "SHUTDOWN"
    POWER_OFF = "POWER_OFF"
    NOT_EXIST = "NOT_EXIST"
    BUSY = "BUSY"
    SUSPECTED_POWER_OFF = "SUSPECTED_POWER_OFF"
    DEFECT = "DEFECT"
    UNKNOWN = "UNKNOWN"

    @property
    def label_zh(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][1]


_STATUS_LABELS: dict[PhoneStatus, tuple[str, str]] = {
    PhoneStatus.NORMAL: ("正常", "In service"),
    PhoneStatus.SHUTDOWN: ("停机", "Suspended"),
    PhoneStatus.POWER_OFF: ("关机", "Powered off"),
    PhoneStatus.NOT_EXIST: ("空号", "Not allocated"),
    PhoneStatus.BUSY: ("忙", "Busy"),
    PhoneStatus.SUSPECTED_POWER_OFF: ("疑似关机", "Probably powered off"),
    PhoneStatus.DEFECT: ("号码异常", "Invalid in the network"),
    PhoneStatus.UNKNOWN: ("未知", "Unknown"),
}


class Carrier(StrEnum):
    """Basic carriers: the network that owns a segment or serves a ported number."""

    CMCC = "CMCC"
    CUCC = "CUCC"
    CTCC = "CTCC"
    CBN = "CBN"

    @property
    def label_zh(self) -> str:
        return _CARRIER_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _CARRIER_LABELS[self][1]


_CARRIER_LABELS: dict[Carrier, tuple[str, str]] = {
    Carrier.CMCC: ("中国移动", "China Mobile"),
    Carrier.CUCC: ("中国联通", "China Unicom"),
    Carrier.CTCC: ("中国电信", "China Telecom"),
    Carrier.CBN: ("中国广电", "China Broadnet"),
}


def is_billable(code: str, status: PhoneStatus | None) -> bool:
    """Return whether a status query is charged: Code is OK and the status is known.

    Failed queries, queries without a result and UNKNOWN are free.
    """
    return code == RESPONSE_CODE_OK and status is not None and status is not PhoneStatus.UNKNOWN
