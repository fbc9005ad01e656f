"""Alibaba Cloud POP request signatures: RPC V1 (HMAC-SHA1) and ACS3 (HMAC-SHA256, HMAC-SM3).

These are pure functions over already-parsed request parts, so the known-answer
vectors can test them without HTTP. The verifier in ``gateway.verify`` decides
which one applies and turns a mismatch into ``SignatureDoesNotMatch``.

Percent-encoding follows RFC 3986 section 2.3: only ``A-Z a-z 0-9 - _ . ~``
stay unescaped and every other UTF-8 byte becomes ``%XX`` in uppercase hex, so a
space is ``%20`` (never ``+``) and ``*`` is ``%2A``. SM3 is the hash of
GB/T 32905-2016; HMAC-SM3 is RFC 2104 HMAC over it with a 64-byte block.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import quote

from phonestatus.numbers.masks import sm3_hex

V1_SIGNATURE_METHOD = "HMAC-SHA1"
V1_SIGNATURE_VERSION = "1.0"
V1_SIGNATURE_PARAM = "Signature"

_SM3_BLOCK_BYTES = 64


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


class V3Algorithm(StrEnum):
    HMAC_SHA256 = "ACS3-HMAC-SHA256"
    HMAC_SM3 = "ACS3-HMAC-SM3"


class AuthorizationFormatError(ValueError):
    """An ``Authorization`` header does not follow the ACS3 layout."""


def percent_encode(value: str) -> str:
    """Encode a name or value per RFC 3986 (``quote`` keeps only unreserved characters)."""
    # Most names and values are unreserved already; the check is far cheaper than quote.
    if _UNRESERVED.fullmatch(value):
        return value
    return _quote_cached(value)


@lru_cache(maxsize=4096)
def _quote_cached(value: str) -> str:
    # Values that need quoting repeat a lot (a Timestamp is shared by every call in its second).
    return quote(value, safe="")


# ---------------------------------------------------------------------------------------------
# RPC signature V1


def v1_canonicalized_query(params: Mapping[str, str]) -> str:
    """Return ``name=value&...`` over every parameter except ``Signature``, sorted by name.

    Sorting is by code point of the decoded name, which is what every official
    client does; an empty value still contributes ``name=``.
    """
    pairs = sorted((name, value) for name, value in params.items() if name != V1_SIGNATURE_PARAM)
    return "&".join(f"{percent_encode(name)}={percent_encode(value)}" for name, value in pairs)


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """Return ``METHOD&%2F&encode(canonicalized query)``; the path of an RPC call is always ``/``."""
    # The canonicalized query holds only unreserved characters, "%", "&" and "=",
    # so encoding it again changes exactly those three.
    query = v1_canonicalized_query(params)
    encoded = query.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
    return f"{method.upper()}&%2F&{encoded}"


def v1_signature(string_to_sign: str, secret: str) -> str:
    """Return the Base64 HMAC-SHA1 of the string-to-sign keyed with ``secret + "&"``."""
    key = (secret + "&").encode()
    # hmac.new, not the one-shot hmac.digest: the one-shot call releases the
    # interpreter lock even for short messages, and on a busy server the
    # event loop then waits for a background thread to give it back.
    digest = hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# ---------------------------------------------------------------------------------------------
# ACS3 (V3) header signature


@dataclass(frozen=True, slots=True)
class V3Authorization:
    """The parsed ``Authorization: <ALGO> Credential=..,SignedHeaders=..,Signature=..`` header."""

    algorithm: V3Algorithm
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


_AUTHORIZATION_FIELDS = ("Credential", "SignedHeaders", "Signature")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


def is_v3_authorization(header: str | None) -> bool:
    return header is not None and header.lstrip().startswith("ACS3-")


def parse_v3_authorization(header: str) -> V3Authorization:
    """Parse an ACS3 ``Authorization`` header.

    Raises ``AuthorizationFormatError`` for an unknown algorithm, a missing
    field or a malformed header list, so the caller returns ``IncompleteSignature``.
    """
    algorithm_text, _, rest = header.strip().partition(" ")
    try:
        algorithm = V3Algorithm(algorithm_text)
    except ValueError:
        raise AuthorizationFormatError(
            f"unsupported signature algorithm {algorithm_text[:40]!r}"
        ) from None

    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, separator, value = part.strip().partition("=")
        if separator and name in _AUTHORIZATION_FIELDS:
            fields[name] = value.strip()
    missing = [name for name in _AUTHORIZATION_FIELDS if not fields.get(name)]
    if missing:
        raise AuthorizationFormatError(f"Authorization header has no {', '.join(missing)}")

    signed_headers = tuple(fields["SignedHeaders"].split(";"))
    if any(not _HEADER_NAME.match(name) for name in signed_headers):
        raise AuthorizationFormatError("SignedHeaders must list lowercase header names")
    return V3Authorization(
        algorithm=algorithm,
        access_key_id=fields["Credential"],
        signed_headers=signed_headers,
        signature=fields["Signature"].lower(),
    )


def v3_hash_hex(algorithm: V3Algorithm, data: bytes) -> str:
    """Return the lowercase hex hash the algorithm uses for payloads and canonical requests."""
    if algorithm is V3Algorithm.HMAC_SM3:
        return sm3_hex(data)
    return hashlib.sha256(data).hexdigest()


def v3_canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """Return the decoded URL query re-encoded per RFC 3986 and sorted by name, then value."""
    pairs = sorted((percent_encode(name), percent_encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def v3_canonical_headers(
    headers: Mapping[str, Sequence[str]], signed_headers: Sequence[str]
) -> str:
    """Return one ``name:value\\n`` line per signed header, rebuilt from the request itself.

    ``headers`` maps lowercase names to every value sent under that name; the
    values of a repeated header are trimmed and joined with ``,``. A signed header
    that the request lacks contributes ``name:`` so the signature fails cleanly.
    """
    lines = []
    for name in sorted(signed_headers):
        values = headers.get(name, ())
        lines.append(f"{name}:{','.join(value.strip() for value in values)}\n")
    return "".join(lines)


def v3_canonical_request(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    return "\n".join(
        (
            method.upper(),
            path or "/",
            v3_canonical_query(query),
            v3_canonical_headers(headers, signed_headers),
            ";".join(sorted(signed_headers)),
            payload_hash,
        )
    )


def v3_string_to_sign(algorithm: V3Algorithm, canonical_request: str) -> str:
    return f"{algorithm.value}\n{v3_hash_hex(algorithm, canonical_request.encode())}"


def v3_signature(algorithm: V3Algorithm, secret: str, string_to_sign: str) -> str:
    """Return the lowercase hex HMAC of the string-to-sign; unlike V1 the key has no ``&``."""
    key = secret.encode()
    message = string_to_sign.encode()
    if algorithm is V3Algorithm.HMAC_SM3:
        return hmac_sm3(key, message).hex()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def hmac_sm3(key: bytes, message: bytes) -> bytes:
    """Return RFC 2104 HMAC over SM3; ``hmac`` cannot take SM3 because hashlib lacks it."""
    if len(key) > _SM3_BLOCK_BYTES:
        key = bytes.fromhex(sm3_hex(key))
    key = key.ljust(_SM3_BLOCK_BYTES, b"\x00")
    inner_key = bytes(byte ^ 0x36 for byte in key)
    outer_key = bytes(byte ^ 0x5C for byte in key)
    inner = bytes.fromhex(sm3_hex(inner_key + message))
    return bytes.fromhex(sm3_hex(outer_key + inner))


def signatures_match(expected: str, given: str) -> bool:
    """Compare in constant time so the check leaks no prefix of the expected signature."""
    return hmac.compare_digest(expected.encode(), given.encode())
