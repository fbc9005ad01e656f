"""Pure phone-number domain: parsing, segments, attribution, masks and statuses.

This package does no I/O, no logging and reads no settings.
"""

from phonestatus.numbers.masks import DigestError, Mask, digest, normalize_digest
from phonestatus.numbers.statuses import RESPONSE_CODE_OK, Carrier, PhoneStatus, is_billable

__all__ = [
    "RESPONSE_CODE_OK",
    "Carrier",
    "DigestError",
    "Mask",
    "PhoneStatus",
    "digest",
    "is_billable",
    "normalize_digest",
]
