"""The request verifier, driven with the known-answer vectors of test_signing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from phonestatus.clock import FrozenClock
from phonestatus.gateway.errors import GatewayError
from phonestatus.gateway.nonce import MemoryNonceStore
from phonestatus.gateway.params import parse_params
from phonestatus.gateway.signing import percent_encode
from phonestatus.gateway.verify import (
    RequestVerifier,
    SignatureStyle,
    SignedRequest,
    parse_timestamp,
)

from .test_signing import (
    EMPTY_SHA256,
    EMPTY_SM3,
    V1_NEW_SDK_PARAMS,
    V1_NEW_SDK_SIGNATURE,
    V1_NEW_SDK_STRING_TO_SIGN,
    V1_OLD_SDK_PARAMS,
    V1_OLD_SDK_SIGNATURE,
    V3_SHA256_SIGNATURE,
    V3_SIGNED_HEADERS,
    V3_SM3_SIGNATURE,
    v3_headers,
)

VECTOR_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FakeKey:
    access_key_id: str = "testid"
    account_id: str = "acc_1"
    secret: str = "testsecret"
    enabled: bool = True


def make_verifier(
    *, key: FakeKey | None = None, clock: FrozenClock | None = None
) -> RequestVerifier:
    keys = {"testid": key or FakeKey()}

    async def resolve(access_key_id: str) -> FakeKey | None:
        return keys.get(access_key_id)

    clock = clock or FrozenClock(VECTOR_TIME)
    return RequestVerifier(
        resolve_key=resolve,
        nonce_store=MemoryNonceStore(clock=clock),
        clock=clock,
        window_seconds=900,
    )


def v1_request(params: dict[str, str], signature: str, *, method: str = "POST") -> SignedRequest:
    query = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in (params | {"Signature": signature}).items()
    )
    return SignedRequest(
        method=method, path="/", params=parse_params(query, b"", None), headers={}, body=b""
    )


def v3_request(algorithm: str, content_hash: str, signature: str) -> SignedRequest:
    headers = v3_headers(content_hash) | {
        "authorization": [
            f"{algorithm} Credential=testid,SignedHeaders={';'.join(V3_SIGNED_HEADERS)},"
            f"Signature={signature}"
        ]
    }
    query = "AuthCode=AUTH1&InputNumber=13800138000&Mask=NORMAL"
    return SignedRequest(
        method="POST", path="/", params=parse_params(query, b"", None), headers=headers, body=b""
    )


async def expect_code(verifier: RequestVerifier, request: SignedRequest, code: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await verifier.verify(request)
    assert caught.value.code == code
    return caught.value


class TestVerifyV1:
    async def test_verify_new_sdk_vector(self) -> None:
        verified = await make_verifier().verify(v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE))
        assert verified.account_id == "acc_1"
        assert verified.action == "PhoneNumberStatusForReal"
        assert verified.version == "2020-02-17"
        assert verified.style is SignatureStyle.V1

    async def test_verify_old_sdk_vector_with_form_body(self) -> None:
        body = "&".join(
            f"{k}={percent_encode(v)}"
            for k, v in (V1_OLD_SDK_PARAMS | {"Signature": V1_OLD_SDK_SIGNATURE}).items()
        ).encode()
        request = SignedRequest(
            method="POST",
            path="/",
            params=parse_params(b"", body, "application/x-www-form-urlencoded"),
            headers={},
            body=body,
        )
        verified = await make_verifier().verify(request)
        assert verified.action == "DescribePhoneNumberStatus"

    async def test_verify_wrong_secret_returns_string_to_sign(self) -> None:
        verifier = make_verifier(key=FakeKey(secret="other"))
        error = await expect_code(
            verifier, v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE), "SignatureDoesNotMatch"
        )
        assert error.message.split(":", 1)[1] == V1_NEW_SDK_STRING_TO_SIGN

    async def test_verify_message_never_contains_secret(self) -> None:
        verifier = make_verifier(key=FakeKey(secret="other-secret"))
        error = await expect_code(
            verifier, v1_request(V1_NEW_SDK_PARAMS, "bad"), "SignatureDoesNotMatch"
        )
        assert "other-secret" not in error.message
        assert V1_NEW_SDK_SIGNATURE not in error.message

    async def test_verify_method_is_signed(self) -> None:
        request = v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE, method="GET")
        await expect_code(make_verifier(), request, "SignatureDoesNotMatch")

    async def test_verify_replay_rejected(self) -> None:
        verifier = make_verifier()
        request = v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE)
        await verifier.verify(request)
        await expect_code(verifier, request, "SignatureNonceUsed")

    async def test_verify_bad_signature_does_not_burn_nonce(self) -> None:
        verifier = make_verifier()
        await expect_code(verifier, v1_request(V1_NEW_SDK_PARAMS, "bad"), "SignatureDoesNotMatch")
        await verifier.verify(v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE))

    async def test_verify_unknown_key_is_not_found(self) -> None:
        params = V1_NEW_SDK_PARAMS | {"AccessKeyId": "nobody"}
        error = await expect_code(
            make_verifier(), v1_request(params, "x"), "InvalidAccessKeyId.NotFound"
        )
        assert error.http_status == 404

    async def test_verify_disabled_key_is_inactive(self) -> None:
        verifier = make_verifier(key=FakeKey(enabled=False))
        await expect_code(
            verifier,
            v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE),
            "InvalidAccessKeyId.Inactive",
        )

    @pytest.mark.parametrize(
        "name", ["AccessKeyId", "SignatureMethod", "Timestamp", "SignatureNonce"]
    )
    async def test_verify_missing_common_param(self, name: str) -> None:
        params = {k: v for k, v in V1_NEW_SDK_PARAMS.items() if k != name}
        await expect_code(make_verifier(), v1_request(params, "x"), f"Missing{name}")

    async def test_verify_missing_signature(self) -> None:
        query = "&".join(f"{k}={percent_encode(v)}" for k, v in V1_NEW_SDK_PARAMS.items())
        request = SignedRequest(
            method="GET", path="/", params=parse_params(query, b"", None), headers={}, body=b""
        )
        await expect_code(make_verifier(), request, "MissingSignature")

    async def test_verify_unknown_signature_method(self) -> None:
        params = V1_NEW_SDK_PARAMS | {"SignatureMethod": "HMAC-MD5"}
        await expect_code(make_verifier(), v1_request(params, "x"), "InvalidSignatureMethod")

    @pytest.mark.parametrize(
        ("minutes", "accepted"), [(-14, True), (14, True), (-16, False), (16, False)]
    )
    async def test_verify_skew_window(self, minutes: int, accepted: bool) -> None:
        clock = FrozenClock(VECTOR_TIME + timedelta(minutes=minutes))
        request = v1_request(V1_NEW_SDK_PARAMS, V1_NEW_SDK_SIGNATURE)
        if accepted:
            await make_verifier(clock=clock).verify(request)
        else:
            await expect_code(make_verifier(clock=clock), request, "InvalidTimeStamp.Expired")

    async def test_verify_long_nonce_rejected(self) -> None:
        params = V1_NEW_SDK_PARAMS | {"SignatureNonce": "n" * 200}
        await expect_code(make_verifier(), v1_request(params, "x"), "InvalidParameter")


class TestVerifyV3:
    async def test_verify_sha256_vector(self) -> None:
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, V3_SHA256_SIGNATURE)
        verified = await make_verifier().verify(request)
        assert verified.action == "PhoneNumberStatusForReal"
        assert verified.version == "2020-02-17"
        assert verified.style is SignatureStyle.ACS3_HMAC_SHA256

    async def test_verify_sm3_vector(self) -> None:
        request = v3_request("ACS3-HMAC-SM3", EMPTY_SM3, V3_SM3_SIGNATURE)
        verified = await make_verifier().verify(request)
        assert verified.style is SignatureStyle.ACS3_HMAC_SM3

    async def test_verify_wrong_signature_returns_string_to_sign(self) -> None:
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, "00" * 32)
        error = await expect_code(make_verifier(), request, "SignatureDoesNotMatch")
        assert error.message.endswith(
            "server string to sign is:ACS3-HMAC-SHA256\n"
            "cf4aee5da0d80f56132d3b45adee6fedaaa349c32bbdbfc6aa2f4b83808ba43d"
        )

    async def test_verify_body_hash_checked_against_raw_body(self) -> None:
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, V3_SHA256_SIGNATURE)
        tampered = SignedRequest(
            method=request.method,
            path=request.path,
            params=request.params,
            headers=request.headers,
            body=b"Mask=MD5",
        )
        await expect_code(make_verifier(), tampered, "IncompleteSignature")

    async def test_verify_changed_query_fails(self) -> None:
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, V3_SHA256_SIGNATURE)
        changed = SignedRequest(
            method="POST",
            path="/",
            params=parse_params("AuthCode=AUTH1&InputNumber=13800138001&Mask=NORMAL", b"", None),
            headers=request.headers,
            body=b"",
        )
        await expect_code(make_verifier(), changed, "SignatureDoesNotMatch")

    async def test_verify_unsigned_date_rejected(self) -> None:
        headers = dict(v3_headers(EMPTY_SHA256))
        headers["authorization"] = [
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action,Signature=00"
        ]
        request = SignedRequest(
            method="POST", path="/", params=parse_params("", b"", None), headers=headers, body=b""
        )
        await expect_code(make_verifier(), request, "IncompleteSignature")

    async def test_verify_replay_rejected(self) -> None:
        verifier = make_verifier()
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, V3_SHA256_SIGNATURE)
        await verifier.verify(request)
        await expect_code(verifier, request, "SignatureNonceUsed")

    async def test_verify_malformed_date(self) -> None:
        request = v3_request("ACS3-HMAC-SHA256", EMPTY_SHA256, V3_SHA256_SIGNATURE)
        headers = dict(request.headers) | {"x-acs-date": ["Mon, 01 Jan 2024 00:00:00 GMT"]}
        changed = SignedRequest(
            method="POST", path="/", params=request.params, headers=headers, body=b""
        )
        await expect_code(make_verifier(), changed, "InvalidTimeStamp.Format")


class TestParseTimestamp:
    def test_parse_timestamp_utc(self) -> None:
        assert parse_timestamp("2024-01-01T00:00:00Z") == VECTOR_TIME

    def test_parse_timestamp_with_fraction(self) -> None:
        assert parse_timestamp("2024-01-01T00:00:00.5Z") == VECTOR_TIME + timedelta(
            milliseconds=500
        )

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+08:00",
            "2024-01-01 00:00:00Z",
            "２０２４-01-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024年1月1日 08:00:00",
            "1704067200",
            "2024-01-01T00:00:00Z\n",
            "x" * 10_000,
        ],
    )
    def test_parse_timestamp_malformed_raises_format(self, text: str) -> None:
        with pytest.raises(GatewayError) as caught:
            parse_timestamp(text)
        assert caught.value.code == "InvalidTimeStamp.Format"
        assert caught.value.http_status == 400
