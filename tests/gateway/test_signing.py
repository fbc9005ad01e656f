"""Known-answer vectors for the signature algorithms, computed with the official SDKs' helpers."""

from __future__ import annotations

import pytest

from phonestatus.gateway import signing
from phonestatus.gateway.signing import V3Algorithm

SECRET = "testsecret"
NONCE = "0123456789abcdef0123456789abcdef"
TIMESTAMP = "2024-01-01T00:00:00Z"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_SM3 = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"

V1_NEW_SDK_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "PhoneNumberStatusForReal",
    "AuthCode": "AUTH1",
    "Format": "json",
    "InputNumber": "13800138000",
    "Mask": "NORMAL",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": NONCE,
    "SignatureVersion": "1.0",
    "Timestamp": TIMESTAMP,
    "Version": "2020-02-17",
}
V1_NEW_SDK_STRING_TO_SIGN = (
    "POST&%2F&AccessKeyId%3Dtestid%26Action%3DPhoneNumberStatusForReal%26AuthCode%3DAUTH1"
    "%26Format%3Djson%26InputNumber%3D13800138000%26Mask%3DNORMAL%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D0123456789abcdef0123456789abcdef%26SignatureVersion%3D1.0"
    "%26Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2020-02-17"
)
V1_NEW_SDK_SIGNATURE = "sFNlkT6Gij2Ar6AFvFdhzKfR4Ew="

V1_OLD_SDK_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "DescribePhoneNumberStatus",
    "Format": "JSON",
    "PhoneNumber": "13800138000",
    "RegionId": "cn-hangzhou",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": NONCE,
    "SignatureType": "",
    "SignatureVersion": "1.0",
    "Timestamp": TIMESTAMP,
    "Version": "2020-02-17",
}
V1_OLD_SDK_STRING_TO_SIGN = (
    "POST&%2F&AccessKeyId%3Dtestid%26Action%3DDescribePhoneNumberStatus%26Format%3DJSON"
    "%26PhoneNumber%3D13800138000%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D0123456789abcdef0123456789abcdef%26SignatureType%3D"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2020-02-17"
)
V1_OLD_SDK_SIGNATURE = "KA9pONEx7qRuWWXMdfK000YmKYU="

V1_ENCODING_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "PhoneNumberStatusForSms",
    "AuthCode": "a b*~/",
    "Format": "JSON",
    "InputNumber": "中",
    "Mask": "NORMAL",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": NONCE,
    "SignatureVersion": "1.0",
    "Timestamp": TIMESTAMP,
    "Version": "2020-02-17",
}
V1_ENCODING_SIGNATURE = "nh0i8IjSwjadzQXewP1sJCLKLHQ="

V3_QUERY = (("AuthCode", "AUTH1"), ("InputNumber", "13800138000"), ("Mask", "NORMAL"))
V3_SIGNED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
V3_CANONICAL_REQUEST_SHA256 = (
    "POST\n/\nAuthCode=AUTH1&InputNumber=13800138000&Mask=NORMAL\n"
    "host:dytnsapi.aliyuncs.com\n"
    "x-acs-action:PhoneNumberStatusForReal\n"
    f"x-acs-content-sha256:{EMPTY_SHA256}\n"
    "x-acs-date:2024-01-01T00:00:00Z\n"
    f"x-acs-signature-nonce:{NONCE}\n"
    "x-acs-version:2020-02-17\n"
    "\n"
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
    f"{EMPTY_SHA256}"
)
V3_SHA256_STRING_TO_SIGN = (
    "ACS3-HMAC-SHA256\ncf4aee5da0d80f56132d3b45adee6fedaaa349c32bbdbfc6aa2f4b83808ba43d"
)
V3_SHA256_SIGNATURE = "fcae4da8da8e68b3fd6fc15a2b67c76460c99427268f1ce00eaeb3dd4d3f0fd3"
V3_SM3_STRING_TO_SIGN = (
    "ACS3-HMAC-SM3\n3ea131f10815f695745d874353ff2c332ca7914a0a7564a9c8bad2852bb9f7b1"
)
V3_SM3_SIGNATURE = "c11347a95b79c0c3c7e276b76f84f6c29d7f95bb142254f8a7868e33d9afd84d"


def v3_headers(content_hash: str) -> dict[str, list[str]]:
    return {
        "host": ["dytnsapi.aliyuncs.com"],
        "x-acs-action": ["PhoneNumberStatusForReal"],
        "x-acs-content-sha256": [content_hash],
        "x-acs-date": [TIMESTAMP],
        "x-acs-signature-nonce": [NONCE],
        "x-acs-version": ["2020-02-17"],
    }


class TestPercentEncode:
    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            ("a b", "a%20b"),
            ("*", "%2A"),
            ("~", "~"),
            ("/", "%2F"),
            ("+", "%2B"),
            ("&=", "%26%3D"),
            ("中", "%E4%B8%AD"),
            ("AZaz09-_.", "AZaz09-_."),
        ],
    )
    def test_percent_encode_follows_rfc3986(self, value: str, encoded: str) -> None:
        assert signing.percent_encode(value) == encoded


class TestV1:
    def test_string_to_sign_new_sdk_vector(self) -> None:
        assert signing.v1_string_to_sign("POST", V1_NEW_SDK_PARAMS) == V1_NEW_SDK_STRING_TO_SIGN

    def test_signature_new_sdk_vector(self) -> None:
        signature = signing.v1_signature(V1_NEW_SDK_STRING_TO_SIGN, SECRET)
        assert signature == V1_NEW_SDK_SIGNATURE

    def test_string_to_sign_old_sdk_keeps_empty_value(self) -> None:
        assert signing.v1_string_to_sign("POST", V1_OLD_SDK_PARAMS) == V1_OLD_SDK_STRING_TO_SIGN

    def test_signature_old_sdk_vector(self) -> None:
        signature = signing.v1_signature(V1_OLD_SDK_STRING_TO_SIGN, SECRET)
        assert signature == V1_OLD_SDK_SIGNATURE

    def test_canonicalized_query_encodes_reserved_and_unicode(self) -> None:
        canonical = signing.v1_canonicalized_query(V1_ENCODING_PARAMS)
        assert "AuthCode=a%20b%2A~%2F&" in canonical
        assert "&InputNumber=%E4%B8%AD&" in canonical

    def test_signature_encoding_vector(self) -> None:
        string_to_sign = signing.v1_string_to_sign("GET", V1_ENCODING_PARAMS)
        assert signing.v1_signature(string_to_sign, SECRET) == V1_ENCODING_SIGNATURE

    def test_string_to_sign_ignores_signature_param(self) -> None:
        params = V1_NEW_SDK_PARAMS | {"Signature": "anything"}
        assert signing.v1_string_to_sign("POST", params) == V1_NEW_SDK_STRING_TO_SIGN

    def test_string_to_sign_has_no_colon(self) -> None:
        # Clients split the SignatureDoesNotMatch message on its only ':'.
        assert ":" not in signing.v1_string_to_sign("GET", V1_ENCODING_PARAMS)


class TestV3:
    def test_canonical_request_sha256_vector(self) -> None:
        canonical = signing.v3_canonical_request(
            method="POST",
            path="/",
            query=V3_QUERY,
            headers=v3_headers(EMPTY_SHA256),
            signed_headers=V3_SIGNED_HEADERS,
            payload_hash=EMPTY_SHA256,
        )
        assert canonical == V3_CANONICAL_REQUEST_SHA256

    def test_string_to_sign_sha256_vector(self) -> None:
        string_to_sign = signing.v3_string_to_sign(
            V3Algorithm.HMAC_SHA256, V3_CANONICAL_REQUEST_SHA256
        )
        assert string_to_sign == V3_SHA256_STRING_TO_SIGN

    def test_signature_sha256_vector(self) -> None:
        signature = signing.v3_signature(V3Algorithm.HMAC_SHA256, SECRET, V3_SHA256_STRING_TO_SIGN)
        assert signature == V3_SHA256_SIGNATURE

    def test_payload_hash_of_empty_body(self) -> None:
        assert signing.v3_hash_hex(V3Algorithm.HMAC_SHA256, b"") == EMPTY_SHA256
        assert signing.v3_hash_hex(V3Algorithm.HMAC_SM3, b"") == EMPTY_SM3

    def test_sm3_vector(self) -> None:
        canonical = signing.v3_canonical_request(
            method="POST",
            path="/",
            query=V3_QUERY,
            headers=v3_headers(EMPTY_SM3),
            signed_headers=V3_SIGNED_HEADERS,
            payload_hash=EMPTY_SM3,
        )
        string_to_sign = signing.v3_string_to_sign(V3Algorithm.HMAC_SM3, canonical)
        assert string_to_sign == V3_SM3_STRING_TO_SIGN
        signature = signing.v3_signature(V3Algorithm.HMAC_SM3, SECRET, string_to_sign)
        assert signature == V3_SM3_SIGNATURE

    def test_canonical_headers_join_repeated_values(self) -> None:
        headers = {"x-acs-a": [" one ", "two"]}
        assert signing.v3_canonical_headers(headers, ["x-acs-a"]) == "x-acs-a:one,two\n"

    def test_canonical_query_sorts_and_encodes(self) -> None:
        query = [("b", "x y"), ("a", ""), ("c", "*")]
        assert signing.v3_canonical_query(query) == "a=&b=x%20y&c=%2A"

    def test_parse_authorization_reads_fields(self) -> None:
        header = (
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-date,"
            f"Signature={V3_SHA256_SIGNATURE}"
        )
        parsed = signing.parse_v3_authorization(header)
        assert parsed.algorithm is V3Algorithm.HMAC_SHA256
        assert parsed.access_key_id == "testid"
        assert parsed.signed_headers == ("host", "x-acs-date")
        assert parsed.signature == V3_SHA256_SIGNATURE

    @pytest.mark.parametrize(
        "header",
        [
            "ACS3-HMAC-MD5 Credential=a,SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host;X,Signature=00",
            "ACS3-HMAC-SHA256",
        ],
    )
    def test_parse_authorization_malformed_raises(self, header: str) -> None:
        with pytest.raises(signing.AuthorizationFormatError):
            signing.parse_v3_authorization(header)


class TestHmacSm3:
    def test_hmac_sm3_long_key_is_hashed_first(self) -> None:
        long_key = b"k" * 100
        hashed_key = bytes.fromhex(signing.sm3_hex(long_key))
        assert signing.hmac_sm3(long_key, b"m") == signing.hmac_sm3(hashed_key, b"m")

    def test_hmac_sm3_differs_by_key(self) -> None:
        assert signing.hmac_sm3(b"a", b"m") != signing.hmac_sm3(b"b", b"m")
