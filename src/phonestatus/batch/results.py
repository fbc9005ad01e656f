"""The per-number and per-row results of a batch job, and their Chinese and English labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phonestatus.numbers import Carrier, PhoneStatus

# Result column values for rows that got no status from the network.
INVALID = "INVALID"
NOT_QUERIED = "NOT_QUERIED"

# Labels for values outside PhoneStatus: other scenes' wire statuses, refusals
# and rows that were never queried.
_EXTRA_LABELS: dict[str, tuple[str, str]] = {
    "EMPTY": ("空号", "Not allocated"),
    "SUSPECT_EMPTY": ("疑似空号", "Probably not allocated"),
    "OperatorLimit": ("运营商限制", "Refused by the carrier"),
    "RequestFrequencyLimit": ("查询过于频繁", "Queried too often"),
    INVALID: ("号码无效", "Invalid number"),
    NOT_QUERIED: ("未查询", "Not queried"),
}


# Flat lookups: result files call these once per row.
_LABELS: dict[str, tuple[str, str]] = {
    **{status.value: (status.label_zh, status.label_en) for status in PhoneStatus},
    **_EXTRA_LABELS,
}
_CARRIER_LABELS_ZH: dict[str, str] = {carrier.value: carrier.label_zh for carrier in Carrier}


def status_label_zh(value: str) -> str:
    """Return the Chinese label of a status, refusal code or row outcome value."""
    return _LABELS.get(value, (value, value))[0]


def status_label_en(value: str) -> str:
    return _LABELS.get(value, (value, value))[1]


def carrier_label_zh(value: str | None) -> str:
    if value is None:
        return ""
    return _CARRIER_LABELS_ZH.get(value, value)


@dataclass(frozen=True, slots=True)
class NumberResult:
    """The answer for one distinct number of a job, as stored with its chunk."""

    code: str  # OutcomeCode value: "OK", "OperatorLimit", "RequestFrequencyLimit"
    status: str | None  # the scene's wire status; None unless code is OK
    carrier: str | None  # Carrier value serving the number now
    billable: bool
    ported: bool

    @property
    def outcome(self) -> str:
        """The value shown in the result file's status column."""
        return self.status if self.code == "OK" and self.status else self.code

    def to_list(self) -> list[object]:
        return [self.code, self.status, self.carrier, int(self.billable), int(self.ported)]

    @classmethod
    def from_list(cls, values: list[object]) -> NumberResult:
        code, status, carrier, billable, ported = values
        return cls(
            code=str(code),
            status=None if status is None else str(status),
            carrier=None if carrier is None else str(carrier),
            billable=bool(billable),
            ported=bool(ported),
        )


# Not frozen: one is built per row of a result file, millions per job, and a
# frozen dataclass's __init__ costs about half as much again. Treat it as read-only.
@dataclass(slots=True)
class ResultRow:
    """One row of the result file: the source row and what became of it."""

    row_number: int
    cells: tuple[str, ...]
    number: str | None
    result: NumberResult | None
    duplicate: bool = False
    reason_code: str | None = None  # ParseErrorReason value for invalid rows
    reason_zh: str | None = None

    @property
    def outcome(self) -> str:
        if self.number is None:
            return INVALID
        if self.result is None:
            return NOT_QUERIED
        return self.result.outcome

    @property
    def carrier(self) -> str | None:
        return self.result.carrier if self.result else None

    @property
    def note(self) -> str:
        """The reason column: why a row is invalid, or what else a reader should know."""
        if self.number is None:
            return self.reason_zh or ""
        notes = []
        if self.duplicate:
            notes.append("重复号码，已合并查询、只计费一次")
        if self.result is not None and self.result.ported:
            notes.append("已携号转网")
        return "；".join(notes)


def encode_chunk_results(results: Sequence[NumberResult]) -> dict[str, Any]:
    """Return a chunk's results, one per number, in the form stored with the chunk.

    Each distinct result is stored once (``distinct``, ``NumberResult.to_list``
    values) and each number refers to one by position (``ids``, space-separated).
    A million numbers have a few dozen distinct results, and decoding a list
    per number cost about a second per million when the result file was made.
    Equal results that are separate objects are stored once each; ``worker``
    shares one object per distinct result.
    """
    positions: dict[int, int] = {}
    distinct: list[list[object]] = []
    for result in results:
        if id(result) not in positions:
            positions[id(result)] = len(distinct)
            distinct.append(result.to_list())
    ids = " ".join(str(positions[id(result)]) for result in results)
    return {"distinct": distinct, "ids": ids}


def decode_chunk_results(stored: Any) -> tuple[list[NumberResult], list[int]]:
    """Return the distinct results of a stored chunk and, per number, its result's position.

    Takes the form ``encode_chunk_results`` writes and the older one (a list
    of ``to_list`` values per number).
    """
    if isinstance(stored, dict):
        distinct = [NumberResult.from_list(values) for values in stored["distinct"]]
        ids = list(map(int, stored["ids"].split()))
        return distinct, ids
    keys = list(map(tuple, stored))
    order: dict[tuple[Any, ...], int] = {}
    for key in keys:
        order.setdefault(key, len(order))
    distinct = [NumberResult.from_list(list(key)) for key in order]
    return distinct, list(map(order.__getitem__, keys))
