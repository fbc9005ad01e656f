"""Digests of canonical numbers (MD5, SHA-256, SM3) and validation of user-supplied digests.

A digest is always taken over the 11 ASCII digits of the canonical number
and written as lowercase hex. SM3 is the Chinese national hash (GB/T 32905-2016).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from gmssl import sm3


class Mask(StrEnum):
    NORMAL = "NORMAL"
    MD5 = "MD5"
    SHA256 = "SHA256"
    SM3 = "SM3"

    @property
    def hex_length(self) -> int:
        """Length of the hex digest, or 0 for NORMAL (no digest)."""
        return _HEX_LENGTHS[self]


_HEX_LENGTHS = {Mask.NORMAL: 0, Mask.MD5: 32, Mask.SHA256: 64, Mask.SM3: 64}
_HEX_DIGITS = frozenset("0123456789abcdef")


class DigestError(ValueError):
    """A user-supplied digest does not fit its mask."""

    def __init__(self, value: str, mask: Mask, reason: str) -> None:
        self.value = value
        self.mask = mask
        self.reason = reason
        super().__init__(f"invalid {mask.value} digest {value[:80]!r}: {reason}")


def sm3_hex(data: bytes) -> str:
    result: str = sm3.sm3_hash(list(data))
    return result


def digest(number: str, mask: Mask) -> str:
    """Return the lowercase hex digest of a canonical number under ``mask``."""
    data = number.encode("ascii")
    if mask is Mask.MD5:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if mask is Mask.SHA256:
        return hashlib.sha256(data).hexdigest()
    if mask is Mask.SM3:
        return sm3_hex(data)
    raise ValueError(f"mask {mask.value} has no digest")


def normalize_digest(value: str, mask: Mask) -> str:
    """Validate a user-supplied digest and return it in lowercase hex.

    Raises ``DigestError`` naming the value when its length or characters do
    not fit the mask.
    """
    if mask is Mask.NORMAL:
        raise ValueError("mask NORMAL takes a number, not a digest")
    candidate = value.strip().lower()
    if len(candidate) != mask.hex_length:
        raise DigestError(
            value, mask, f"expected {mask.hex_length} hex characters, got {len(candidate)}"
        )
    if not set(candidate) <= _HEX_DIGITS:
        raise DigestError(value, mask, "expected only hex characters 0-9 and a-f")
    return candidate
