"""Pure phone-number domain: parsing, segments, attribution, masks and statuses.

This package does no I/O beyond reading its own package data, no logging and
reads no settings.
"""

from phonestatus.numbers.attribution import Attribution, attribute
from phonestatus.numbers.errors import NumberParseError, ParseErrorReason
from phonestatus.numbers.masks import DigestError, Mask, digest, normalize_digest
from phonestatus.numbers.parsing import MobileNumber, parse_mobile
from phonestatus.numbers.segments import (
    SEGMENT_DATA_VERSION,
    NumberKind,
    Segment,
    lookup_segment,
)
from phonestatus.numbers.statuses import RESPONSE_CODE_OK, Carrier, PhoneStatus, is_billable

__all__ = [
    "RESPONSE_CODE_OK",
    "SEGMENT_DATA_VERSION",
    "Attribution",
    "Carrier",
    "DigestError",
    "Mask",
    "MobileNumber",
    "NumberKind",
    "NumberParseError",
    "ParseErrorReason",
    "PhoneStatus",
    "Segment",
    "attribute",
    "digest",
    "is_billable",
    "lookup_segment",
    "normalize_digest",
    "parse_mobile",
]
