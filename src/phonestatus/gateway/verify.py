"""Authenticate a signed request: signature (V1 or ACS3), timestamp skew, AccessKey, nonce.

Checks run in this order, and the first failure is raised as ``GatewayError``:

1. required signing parameters or headers present, signature method known;
2. timestamp well formed (UTC, ``YYYY-MM-DDThh:mm:ssZ``) and within the window;
3. AccessKey known (``InvalidAccessKeyId.NotFound``);
4. signature matches (``SignatureDoesNotMatch`` carrying the server's string-to-sign);
5. AccessKey enabled;
6. nonce not seen before for this AccessKey within the window (``SignatureNonceUsed``).

The nonce is claimed last, so a request rejected earlier leaves no trace and
the client may resend it once fixed. Everything here fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from phonestatus.clock import Clock
from phonestatus.gateway import signing
from phonestatus.gateway.errors import Failure, GatewayError
from phonestatus.gateway.nonce import NonceStore
from phonestatus.gateway.params import RequestParams

MAX_NONCE_LENGTH = 128
MAX_ACCESS_KEY_ID_LENGTH = 128

# ASCII digits only: "\d" would also accept full-width and other localized digits.
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z"
)
_V1_REQUIRED = ("AccessKeyId", "Signature", "SignatureMethod", "Timestamp", "SignatureNonce")
_V3_REQUIRED_SIGNED_HEADERS = (
    "x-acs-action",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)


class SignatureStyle(StrEnum):
    V1 = "HMAC-SHA1"
    ACS3_HMAC_SHA256 = "ACS3-HMAC-SHA256"
    ACS3_HMAC_SM3 = "ACS3-HMAC-SM3"


class SigningKey(Protocol):
    """The AccessKey fields the verifier uses."""

    @property
    def access_key_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def enabled(self) -> bool: ...


KeyResolver = Callable[[str], Awaitable[SigningKey | None]]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request a signature covers; header names are lowercase."""

    method: str
    path: str
    params: RequestParams
    headers: Mapping[str, Sequence[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature, freshness and AccessKey were checked."""

    access_key_id: str
    account_id: str
    action: str | None
    version: str | None
    style: SignatureStyle


def parse_timestamp(text: str) -> datetime:
    """Parse ``YYYY-MM-DDThh:mm:ss[.ffffff]Z`` as aware UTC.

    Raises ``GatewayError(InvalidTimeStamp.Format)`` for anything else,
    including offsets other than ``Z``, localized digits and impossible dates.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise GatewayError(Failure.TIMESTAMP_FORMAT, detail=f"Got {text[:64]!r}.")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        raise GatewayError(Failure.TIMESTAMP_FORMAT, detail=f"Got {text[:64]!r}.") from None


def check_freshness(timestamp: datetime, *, clock: Clock, window_seconds: int) -> None:
    """Raise ``InvalidTimeStamp.Expired`` when the timestamp is more than the window away."""
    skew = abs(clock.now() - timestamp)
    if skew > timedelta(seconds=window_seconds):
        raise GatewayError(
            Failure.TIMESTAMP_EXPIRED,
            detail=f"The request time differs from the server time by more than {window_seconds} seconds.",
        )


class RequestVerifier:
    def __init__(
        self,
        *,
        resolve_key: KeyResolver,
        nonce_store: NonceStore,
        clock: Clock,
        window_seconds: int,
    ) -> None:
        self._resolve_key = resolve_key
        self._nonce_store = nonce_store
        self._clock = clock
        self._window_seconds = window_seconds

    async def verify(self, request: SignedRequest) -> VerifiedRequest:
        authorization = request.header("authorization")
        if signing.is_v3_authorization(authorization):
            assert authorization is not None
            return await self._verify_v3(request, authorization)
        return await self._verify_v1(request)

    async def _verify_v1(self, request: SignedRequest) -> VerifiedRequest:
        params = request.params
        for name in _V1_REQUIRED:
            if not params.get(name):
                raise GatewayError(Failure.MISSING_PARAMETER, name=name)
        if params.get("SignatureMethod") != signing.V1_SIGNATURE_METHOD:
            raise GatewayError(
                Failure.INVALID_SIGNATURE_METHOD,
                detail=f"Expected {signing.V1_SIGNATURE_METHOD}.",
            )
        version = params.get("SignatureVersion")
        if version is not None and version != signing.V1_SIGNATURE_VERSION:
            raise GatewayError(
                Failure.INCOMPLETE_SIGNATURE,
                detail=f"SignatureVersion {version[:20]!r} is not supported; expected 1.0.",
            )

        timestamp = parse_timestamp(params.merged["Timestamp"])
        check_freshness(timestamp, clock=self._clock, window_seconds=self._window_seconds)
        nonce = _checked_nonce(params.merged["SignatureNonce"])

        key = await self._load_key(params.merged["AccessKeyId"])
        string_to_sign = signing.v1_string_to_sign(request.method, params.merged)
        expected = signing.v1_signature(string_to_sign, key.secret)
        if not signing.signatures_match(expected, params.merged["Signature"]):
            raise GatewayError(Failure.SIGNATURE_MISMATCH, string_to_sign=string_to_sign)

        await self._accept(key, nonce)
        return VerifiedRequest(
            access_key_id=key.access_key_id,
            account_id=key.account_id,
            action=params.get("Action"),
            version=params.get("Version"),
            style=SignatureStyle.V1,
        )

    async def _verify_v3(self, request: SignedRequest, authorization: str) -> VerifiedRequest:
        try:
            parsed = signing.parse_v3_authorization(authorization)
        except signing.AuthorizationFormatError as exc:
            raise GatewayError(Failure.INCOMPLETE_SIGNATURE, detail=f"{exc}.") from None
        for name in _V3_REQUIRED_SIGNED_HEADERS:
            if name not in parsed.signed_headers or not request.header(name):
                raise GatewayError(
                    Failure.INCOMPLETE_SIGNATURE,
                    detail=f"The {name} header must be sent and listed in SignedHeaders.",
                )

        date_text = request.header("x-acs-date") or ""
        timestamp = parse_timestamp(date_text)
        check_freshness(timestamp, clock=self._clock, window_seconds=self._window_seconds)
        nonce = _checked_nonce(request.header("x-acs-signature-nonce") or "")

        body_hash = signing.v3_hash_hex(parsed.algorithm, request.body)
        claimed_hash = request.header("x-acs-content-sha256")
        if claimed_hash is not None and claimed_hash.strip().lower() != body_hash:
            raise GatewayError(
                Failure.INCOMPLETE_SIGNATURE,
                detail="The x-acs-content-sha256 header does not match the hash of the request body.",
            )

        key = await self._load_key(parsed.access_key_id)
        canonical_request = signing.v3_canonical_request(
            method=request.method,
            path=request.path,
            query=request.params.query,
            headers=request.headers,
            signed_headers=parsed.signed_headers,
            payload_hash=claimed_hash.strip() if claimed_hash is not None else body_hash,
        )
        string_to_sign = signing.v3_string_to_sign(parsed.algorithm, canonical_request)
        expected = signing.v3_signature(parsed.algorithm, key.secret, string_to_sign)
        if not signing.signatures_match(expected, parsed.signature):
            raise GatewayError(Failure.SIGNATURE_MISMATCH, string_to_sign=string_to_sign)

        await self._accept(key, nonce)
        return VerifiedRequest(
            access_key_id=key.access_key_id,
            account_id=key.account_id,
            action=request.header("x-acs-action"),
            version=request.header("x-acs-version"),
            style=SignatureStyle(parsed.algorithm.value),
        )

    async def _load_key(self, access_key_id: str) -> SigningKey:
        if len(access_key_id) > MAX_ACCESS_KEY_ID_LENGTH:
            raise GatewayError(Failure.ACCESS_KEY_NOT_FOUND)
        key = await self._resolve_key(access_key_id)
        if key is None:
            raise GatewayError(Failure.ACCESS_KEY_NOT_FOUND)
        return key

    async def _accept(self, key: SigningKey, nonce: str) -> None:
        if not key.enabled:
            raise GatewayError(Failure.ACCESS_KEY_INACTIVE)
        fresh = await self._nonce_store.claim(
            key.access_key_id, nonce, window_seconds=self._window_seconds
        )
        if not fresh:
            raise GatewayError(Failure.NONCE_USED)


def _checked_nonce(nonce: str) -> str:
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise GatewayError(
            Failure.INVALID_PARAMETER,
            name="SignatureNonce",
            detail=f"Expected 1 to {MAX_NONCE_LENGTH} characters.",
        )
    return nonce
