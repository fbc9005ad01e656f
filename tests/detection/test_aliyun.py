"""AliyunConnector against a fake Dytnsapi server on 127.0.0.1 that verifies V3 signatures.

The fake's verifier is checked first against the ACS3-HMAC-SHA256
known-answer vector (AccessKey ``testid``/``testsecret``, 2024-01-01T00:00:00Z),
so a request it accepts carries a signature the real gateway would accept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from phonestatus.clock import FrozenClock
from phonestatus.detection import OutcomeCode, ProbeSubject, QueryEngine, Scene
from phonestatus.detection.aliyun import (
    AliyunConfigError,
    AliyunConnector,
    AliyunCredentials,
    carrier_from_name,
)
from phonestatus.numbers import Carrier, Mask, PhoneStatus, digest
from phonestatus.ratelimit import NumberGuard, RateLimitStorage
from phonestatus.settings import ConnectorName, Settings

ACCESS_KEY_ID = "testid"
ACCESS_KEY_SECRET = "testsecret"
AUTH_CODE = "AUTH1"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Known-answer vector: POST PhoneNumberStatusForReal signing host + x-acs-* only.
VECTOR_HEADERS = {
    "host": "dytnsapi.aliyuncs.com",
    "x-acs-action": "PhoneNumberStatusForReal",
    "x-acs-content-sha256": EMPTY_SHA256,
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
    "x-acs-version": "2020-02-17",
}
VECTOR_QUERY = [("AuthCode", "AUTH1"), ("InputNumber", "13800138000"), ("Mask", "NORMAL")]
VECTOR_CANONICAL_HASH = "cf4aee5da0d80f56132d3b45adee6fedaaa349c32bbdbfc6aa2f4b83808ba43d"
VECTOR_SIGNATURE = "fcae4da8da8e68b3fd6fc15a2b67c76460c99427268f1ce00eaeb3dd4d3f0fd3"


def _encode(value: str) -> str:
    """Percent-encode per RFC 3986: unreserved characters stay, the rest become %XX."""
    return quote(value, safe="-_.~")


def canonical_request(
    method: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [method, "/", canonical_query, canonical_headers, ";".join(signed_headers), payload_hash]
    )


def v3_signature(secret: str, canonical: str) -> str:
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


class TestVerifierVector:
    def test_canonical_request_hash_matches_vector(self) -> None:
        canonical = canonical_request(
            "POST", VECTOR_QUERY, VECTOR_HEADERS, sorted(VECTOR_HEADERS), EMPTY_SHA256
        )
        assert hashlib.sha256(canonical.encode()).hexdigest() == VECTOR_CANONICAL_HASH

    def test_v3_signature_matches_vector(self) -> None:
        canonical = canonical_request(
            "POST", VECTOR_QUERY, VECTOR_HEADERS, sorted(VECTOR_HEADERS), EMPTY_SHA256
        )
        assert v3_signature(ACCESS_KEY_SECRET, canonical) == VECTOR_SIGNATURE


Reply = tuple[int, dict[str, Any]]


class FakeDytnsapi(ThreadingHTTPServer):
    """A Dytnsapi stand-in: verifies ACS3-HMAC-SHA256, then sends the scripted reply for the action."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: dict[str, Reply] = {}
        self.requests: list[dict[str, Any]] = []
        self.delay_seconds = 0.0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeDytnsapi

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        query = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        action = headers.get("x-acs-action", "")
        self.server.requests.append({"action": action, "params": dict(query)})

        error = self._verify(query, headers, body)
        if error is not None:
            self._reply(400, {"RequestId": "R", "Code": error, "Message": error})
            return
        if self.server.delay_seconds:
            time.sleep(self.server.delay_seconds)
        status, payload = self.server.replies.get(
            action, (404, {"RequestId": "R", "Code": "InvalidAction.NotFound", "Message": "-"})
        )
        self._reply(status, {"RequestId": "R", **payload})

    def _verify(
        self, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> str | None:
        authorization = headers.get("authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != "ACS3-HMAC-SHA256":
            return "IncompleteSignature"
        fields = dict(part.split("=", 1) for part in rest.split(","))
        if fields.get("Credential") != ACCESS_KEY_ID:
            return "InvalidAccessKeyId.NotFound"
        if headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
            return "IncompleteSignature"
        signed = fields["SignedHeaders"].split(";")
        canonical = canonical_request(
            "POST", query, headers, signed, headers["x-acs-content-sha256"]
        )
        if not hmac.compare_digest(v3_signature(ACCESS_KEY_SECRET, canonical), fields["Signature"]):
            return "SignatureDoesNotMatch"
        return None

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake() -> Iterator[FakeDytnsapi]:
    server = FakeDytnsapi()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _connector(endpoint: str, secret: str = ACCESS_KEY_SECRET) -> AliyunConnector:
    credentials = AliyunCredentials(
        access_key_id=ACCESS_KEY_ID, access_key_secret=secret, auth_code=AUTH_CODE
    )
    return AliyunConnector(credentials=credentials, endpoint=endpoint, protocol="http")


@pytest.fixture
async def storage() -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(None)
    yield storage
    await storage.aclose()


@pytest.fixture
def make_engine(fake: FakeDytnsapi, storage: RateLimitStorage) -> Callable[..., QueryEngine]:
    def make(*, secret: str = ACCESS_KEY_SECRET, timeout_seconds: float = 5.0) -> QueryEngine:
        return QueryEngine(
            connectors=_connector(fake.endpoint, secret),
            number_guard=NumberGuard("off", storage=storage),
            cache=None,
            clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)),
            timeout_seconds=timeout_seconds,
        )

    return make


def _ok(data: dict[str, Any]) -> Reply:
    return 200, {"Code": "OK", "Message": "OK", "Data": data}


MOBILE = ProbeSubject.for_number("13800138000")


class TestAliyunConnector:
    async def test_query_real_signed_and_mapped(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = _ok({"Status": "POWER_OFF", "Carrier": "CUCC"})
        result = await make_engine().query(MOBILE, Scene.REAL)
        assert result.code is OutcomeCode.OK
        assert result.status is PhoneStatus.POWER_OFF
        assert result.carrier is Carrier.CUCC
        assert result.basic_carrier is Carrier.CMCC
        assert result.is_ported
        assert result.connector == "aliyun"
        assert result.raw_code == "OK"
        assert fake.requests[0]["params"] == {
            "AuthCode": AUTH_CODE,
            "InputNumber": "13800138000",
            "Mask": "NORMAL",
        }

    async def test_query_sms_calls_sms_action(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForSms"] = _ok({"Status": "SHUTDOWN", "Carrier": "CMCC"})
        result = await make_engine().query(MOBILE, Scene.SMS)
        assert result.status is PhoneStatus.SHUTDOWN
        assert fake.requests[0]["action"] == "PhoneNumberStatusForSms"

    async def test_query_digest_sends_mask(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForVoice"] = _ok({"Status": "NORMAL", "Carrier": "CTCC"})
        value = digest("18912345678", Mask.SHA256)
        result = await make_engine().query(ProbeSubject.from_input(value, Mask.SHA256), Scene.VOICE)
        assert result.status is PhoneStatus.NORMAL
        assert result.number == value
        assert fake.requests[0]["params"]["Mask"] == "SHA256"
        assert fake.requests[0]["params"]["InputNumber"] == value

    async def test_query_legacy_reads_real(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = _ok({"Status": "NOT_EXIST", "Carrier": "CMCC"})
        result = await make_engine().query(MOBILE, Scene.LEGACY)
        assert result.scene_status == "NOT_EXIST"

    async def test_query_empty_number(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["DescribeEmptyNumber"] = _ok({"Number": "13800138000", "Status": "EMPTY"})
        result = await make_engine().query(MOBILE, Scene.EMPTY)
        assert result.scene_status == "EMPTY"
        assert result.billable

    async def test_query_virtual(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForVirtual"] = _ok({"IsPrivacyNumber": True})
        result = await make_engine().query(MOBILE, Scene.VIRTUAL)
        assert result.is_privacy_number is True
        assert result.billable

    async def test_query_attribute_for_digest(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["DescribePhoneNumberOperatorAttribute"] = _ok(
            {
                "BasicCarrier": "中国移动",
                "Carrier": "中国电信",
                "Province": "浙江",
                "City": "杭州",
                "NumberSegment": 138,
                "IsNumberPortability": True,
            }
        )
        subject = ProbeSubject.from_input(digest("13800138000", Mask.MD5), Mask.MD5)
        result = await make_engine().query(subject, Scene.ATTRIBUTE)
        assert result.basic_carrier is Carrier.CMCC
        assert result.carrier is Carrier.CTCC
        assert result.is_ported
        assert result.province == "浙江"
        assert result.city == "杭州"

    async def test_query_operator_limit(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = (
            200,
            {"Code": "OperatorLimit", "Message": "The number is limited by the operator."},
        )
        result = await make_engine().query(MOBILE, Scene.REAL)
        assert result.code is OutcomeCode.OPERATOR_LIMIT
        assert result.raw_code == "OperatorLimit"

    async def test_query_frequency_limit(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = (
            200,
            {"Code": "RequestFrequencyLimit", "Message": "Try later."},
        )
        result = await make_engine().query(MOBILE, Scene.REAL)
        assert result.code is OutcomeCode.FREQUENCY_LIMIT

    async def test_query_throttling_refused(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = (
            400,
            {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."},
        )
        result = await make_engine().query(MOBILE, Scene.REAL)
        assert result.code is OutcomeCode.OPERATOR_LIMIT
        assert result.raw_code == "Throttling.User"

    @pytest.mark.parametrize(
        ("status", "code"), [(400, "MobileNumberIllegal"), (500, "SystemError")]
    )
    async def test_query_http_error_unknown(
        self,
        fake: FakeDytnsapi,
        make_engine: Callable[..., QueryEngine],
        status: int,
        code: str,
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = (status, {"Code": code, "Message": code})
        result = await make_engine().query(MOBILE, Scene.REAL)
        assert result.code is OutcomeCode.OK
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code == code
        assert not result.billable

    async def test_query_foreign_status_unknown(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForSms"] = _ok({"Status": "BUSY", "Carrier": "CMCC"})
        result = await make_engine().query(MOBILE, Scene.SMS)
        assert result.status is PhoneStatus.UNKNOWN

    async def test_query_wrong_secret_rejected_by_fake(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = _ok({"Status": "NORMAL", "Carrier": "CMCC"})
        result = await make_engine(secret="not-the-secret").query(MOBILE, Scene.REAL)
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code == "SignatureDoesNotMatch"

    async def test_query_slow_upstream_times_out(
        self, fake: FakeDytnsapi, make_engine: Callable[..., QueryEngine]
    ) -> None:
        fake.replies["PhoneNumberStatusForReal"] = _ok({"Status": "NORMAL", "Carrier": "CMCC"})
        fake.delay_seconds = 1.0
        result = await make_engine(timeout_seconds=0.2).query(MOBILE, Scene.REAL)
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code in {"Timeout", "UpstreamUnreachable"}

    async def test_query_unreachable_upstream(self, storage: RateLimitStorage) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        engine = QueryEngine(
            connectors=_connector(f"127.0.0.1:{port}"),
            number_guard=NumberGuard("off", storage=storage),
            cache=None,
            clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)),
            timeout_seconds=5.0,
        )
        result = await engine.query(MOBILE, Scene.REAL)
        assert result.status is PhoneStatus.UNKNOWN
        assert result.raw_code == "UpstreamUnreachable"


class TestFromSettings:
    def test_from_settings_missing_credentials(
        self, settings_factory: Callable[..., Settings]
    ) -> None:
        settings = settings_factory(connector=ConnectorName.ALIYUN)
        with pytest.raises(AliyunConfigError) as caught:
            AliyunConnector.from_settings(settings)
        assert "PHONESTATUS_ALIYUN_ACCESS_KEY_SECRET" in str(caught.value)

    async def test_from_settings_engine_uses_upstream(
        self, fake: FakeDytnsapi, settings_factory: Callable[..., Settings]
    ) -> None:
        fake.replies["PhoneNumberStatusForPublic"] = _ok({"Status": "BUSY", "Carrier": "CMCC"})
        settings = settings_factory(
            connector=ConnectorName.ALIYUN,
            aliyun_endpoint=fake.endpoint,
            aliyun_protocol="http",
            aliyun_access_key_id=ACCESS_KEY_ID,
            aliyun_access_key_secret=ACCESS_KEY_SECRET,
            aliyun_auth_code=AUTH_CODE,
        )
        engine = QueryEngine.from_settings(
            settings, clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
        )
        try:
            result = await engine.query(MOBILE, Scene.PUBLIC)
        finally:
            await engine.aclose()
        assert result.status is PhoneStatus.BUSY
        assert result.connector == "aliyun"


class TestCarrierFromName:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [("中国移动", Carrier.CMCC), ("China Telecom", Carrier.CTCC), ("CBN", Carrier.CBN)],
    )
    def test_carrier_from_name_known(self, name: str, expected: Carrier) -> None:
        assert carrier_from_name(name) is expected

    @pytest.mark.parametrize("name", ["阿里通信", "", None, 3])
    def test_carrier_from_name_unknown(self, name: object) -> None:
        assert carrier_from_name(name) is None
