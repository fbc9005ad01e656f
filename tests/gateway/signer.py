"""A small signing client for gateway tests that need raw control over a request.

It signs with the verifier's own functions, which the known-answer vectors in
test_signing pin to the official SDKs; the SDKs themselves drive tests/e2e.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from phonestatus.gateway import signing
from phonestatus.gateway.signing import V3Algorithm

API_VERSION = "2020-02-17"


def timestamp_text(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PreparedRequest:
    method: str
    query: str
    body: bytes
    headers: dict[str, str]

    @property
    def url(self) -> str:
        return f"/?{self.query}" if self.query else "/"


@dataclass(frozen=True)
class Signer:
    access_key_id: str
    secret: str

    def v1(
        self,
        action: str,
        params: dict[str, str],
        *,
        method: str = "GET",
        moment: datetime | None = None,
        nonce: str | None = None,
        extra: dict[str, str] | None = None,
        in_body: bool = False,
    ) -> PreparedRequest:
        """Sign ``params`` with RPC V1; ``in_body`` sends everything as a form body (pop-core POST)."""
        common = {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "SignatureMethod": signing.V1_SIGNATURE_METHOD,
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureVersion": signing.V1_SIGNATURE_VERSION,
            "Timestamp": timestamp_text(moment),
            "Version": API_VERSION,
        }
        signed = common | params | (extra or {})
        signature = signing.v1_signature(signing.v1_string_to_sign(method, signed), self.secret)
        encoded = urlencode(signed | {"Signature": signature})
        if in_body:
            return PreparedRequest(
                method=method,
                query="",
                body=encoded.encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        return PreparedRequest(method=method, query=encoded, body=b"", headers={})

    def v3(
        self,
        action: str,
        params: dict[str, str],
        *,
        algorithm: V3Algorithm = V3Algorithm.HMAC_SHA256,
        host: str = "testserver",
        moment: datetime | None = None,
        nonce: str | None = None,
    ) -> PreparedRequest:
        """Sign with ACS3 the way the Go and Java SDKs do: host and x-acs-* headers."""
        headers = {
            "host": host,
            "x-acs-action": action,
            "x-acs-content-sha256": signing.v3_hash_hex(algorithm, b""),
            "x-acs-date": timestamp_text(moment),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-version": API_VERSION,
        }
        signed_headers = sorted(headers)
        canonical = signing.v3_canonical_request(
            method="POST",
            path="/",
            query=params.items(),
            headers={name: [value] for name, value in headers.items()},
            signed_headers=signed_headers,
            payload_hash=headers["x-acs-content-sha256"],
        )
        signature = signing.v3_signature(
            algorithm, self.secret, signing.v3_string_to_sign(algorithm, canonical)
        )
        headers["authorization"] = (
            f"{algorithm.value} Credential={self.access_key_id},"
            f"SignedHeaders={';'.join(signed_headers)},Signature={signature}"
        )
        return PreparedRequest(method="POST", query=urlencode(params), body=b"", headers=headers)
