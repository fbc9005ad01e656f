"""The segment table: which carrier owns an 11-digit number, from its first 3 or 4 digits.

The table is package data (``data/segments.csv``) so it can be updated and
versioned apart from the code. It is read once, at import, and expanded
into a dict keyed by every 4-digit prefix, so a lookup is one dict access.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from phonestatus.numbers.statuses import Carrier

SEGMENT_TABLE_RESOURCE = "data/segments.csv"


class NumberKind(StrEnum):
    MOBILE = "MOBILE"
    DATA_ONLY = "DATA_ONLY"
    IOT = "IOT"
    SATELLITE = "SATELLITE"
    UNALLOCATED = "UNALLOCATED"


@dataclass(frozen=True, slots=True)
class Segment:
    """A number segment (号段) and who runs it."""

    prefix: str
    # Basic carrier owning the segment; for an MVNO segment, the host network.
    carrier: Carrier
    is_mvno: bool
    kind: NumberKind


@dataclass(frozen=True, slots=True)
class SegmentTable:
    version: str
    segments: tuple[Segment, ...]
    # Every 4-digit prefix covered by the table, 3-digit rows expanded.
    by_prefix4: dict[str, Segment]


class SegmentTableError(ValueError):
    """The packaged segment table is malformed (a packaging bug, not user input)."""


def parse_segment_table(text: str) -> SegmentTable:
    """Parse the CSV text of a segment table and expand it to 4-digit prefixes.

    Lines starting with ``#`` are comments. The first data row is
    ``version,<version>``, the second the column header.
    """
    rows = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]
    if len(rows) < 2 or rows[0][0] != "version" or len(rows[0]) < 2:
        raise SegmentTableError("segment table must start with a 'version,<version>' row")
    version = rows[0][1].strip()
    header = [name.strip() for name in rows[1]]
    if header[:4] != ["prefix", "carrier", "is_mvno", "kind"]:
        raise SegmentTableError(f"unexpected segment table header {header!r}")

    segments = tuple(_parse_row(row) for row in rows[2:])

    by_prefix4: dict[str, Segment] = {}
    three_digit = [segment for segment in segments if len(segment.prefix) == 3]
    four_digit = [segment for segment in segments if len(segment.prefix) == 4]
    for segment in three_digit:
        for fourth in "0123456789":
            by_prefix4[segment.prefix + fourth] = segment
    for segment in four_digit:
        by_prefix4[segment.prefix] = segment

    return SegmentTable(version=version, segments=segments, by_prefix4=by_prefix4)


def _parse_row(row: list[str]) -> Segment:
    if len(row) < 4:
        raise SegmentTableError(f"segment row {row!r} has fewer than 4 columns")
    prefix, carrier, is_mvno, kind = (cell.strip() for cell in row[:4])
    if not (prefix.isascii() and prefix.isdigit() and len(prefix) in (3, 4)):
        raise SegmentTableError(f"segment prefix {prefix!r} must be 3 or 4 ASCII digits")
    if is_mvno not in ("0", "1"):
        raise SegmentTableError(f"segment {prefix}: is_mvno {is_mvno!r} must be 0 or 1")
    try:
        return Segment(
            prefix=prefix, carrier=Carrier(carrier), is_mvno=is_mvno == "1", kind=NumberKind(kind)
        )
    except ValueError as exc:
        raise SegmentTableError(f"segment {prefix}: {exc}") from exc


def load_segment_table() -> SegmentTable:
    """Read and parse the segment table shipped in this package."""
    resource = resources.files("phonestatus.numbers").joinpath(SEGMENT_TABLE_RESOURCE)
    return parse_segment_table(resource.read_text(encoding="utf-8"))


# Loaded at import: the table is small (under 100 rows) and the version is a
# module constant that `phonestatus --version` prints.
SEGMENT_TABLE = load_segment_table()
SEGMENT_DATA_VERSION = SEGMENT_TABLE.version
_BY_PREFIX4 = SEGMENT_TABLE.by_prefix4


def lookup_segment(digits: str) -> Segment | None:
    """Return the segment of a canonical 11-digit number, or None when no segment matches."""
    return _BY_PREFIX4.get(digits[:4])
