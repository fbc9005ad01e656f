"""Upstream connector: forwards lookups to an Alibaba Cloud Dytnsapi endpoint.

With this connector phonestatus runs as a metering, caching gateway in
front of the cloud service, using the operator's own AccessKey and AuthCode.
Requests go through the official async SDK (``alibabacloud_dytnsapi20200217``
and its ``call_api_async``), which signs them with ACS3-HMAC-SHA256. The
endpoint (``host[:port]``) and protocol are configurable so tests can aim it
at a server on 127.0.0.1.

Each scene calls its own action. LEGACY reads PhoneNumberStatusForReal,
because DescribePhoneNumberStatus is no longer offered to new callers.
Upstream responses come back in a scene's vocabulary and are turned into a
network state with ``scenes.state_for``, so the engine reads them through
the same table as the simulator's.

Mapping of upstream results: body Code OK with a known value answers;
``OperatorLimit``, ``RequestFrequencyLimit`` and throttling errors refuse;
every other Code, HTTP error or transport error fails (UNKNOWN, not billed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from phonestatus.detection.protocols import OutcomeKind, ProbeOutcome, ProbeSubject
from phonestatus.detection.scenes import NetworkState, Scene, state_for
from phonestatus.logs import mask_number
from phonestatus.numbers import Carrier
from phonestatus.settings import Settings

logger = structlog.get_logger(__name__)

CONNECTOR_NAME = "aliyun"
API_VERSION = "2020-02-17"
# Upstream body codes that mean "refused, retry later" rather than "failed".
REFUSAL_CODES = frozenset({"OperatorLimit", "RequestFrequencyLimit"})
THROTTLING_PREFIX = "Throttling"

ACTIONS: dict[Scene, str] = {
    Scene.REAL: "PhoneNumberStatusForReal",
    Scene.SMS: "PhoneNumberStatusForSms",
    Scene.VOICE: "PhoneNumberStatusForVoice",
    Scene.ACCOUNT: "PhoneNumberStatusForAccount",
    Scene.PUBLIC: "PhoneNumberStatusForPublic",
    Scene.LEGACY: "PhoneNumberStatusForReal",
    Scene.VIRTUAL: "PhoneNumberStatusForVirtual",
    Scene.EMPTY: "DescribeEmptyNumber",
    Scene.ATTRIBUTE: "DescribePhoneNumberOperatorAttribute",
}
# Attribution responses name carriers in Chinese (sometimes in English).
_CARRIER_NAMES = {
    **{carrier.label_zh: carrier for carrier in Carrier},
    **{carrier.label_en: carrier for carrier in Carrier},
    **{carrier.value: carrier for carrier in Carrier},
}


class AliyunConfigError(ValueError):
    """A required ``PHONESTATUS_ALIYUN_*`` setting is missing or invalid."""


def carrier_from_name(name: object) -> Carrier | None:
    """Map an upstream carrier name (CMCC, 中国移动, China Mobile) to a ``Carrier``."""
    if not isinstance(name, str):
        return None
    return _CARRIER_NAMES.get(name.strip())


@dataclass(frozen=True, slots=True)
class AliyunCredentials:
    access_key_id: str
    access_key_secret: str
    auth_code: str


class AliyunConnector:
    """Dytnsapi upstream behind the ``Connector`` protocol."""

    name = CONNECTOR_NAME

    def __init__(
        self, *, credentials: AliyunCredentials, endpoint: str, protocol: str = "https"
    ) -> None:
        # Imported here so the simulator runs without the SDK installed.
        from alibabacloud_dytnsapi20200217.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        if protocol not in ("http", "https"):
            raise AliyunConfigError(f"invalid aliyun_protocol {protocol!r}: expected http or https")
        self._auth_code = credentials.auth_code
        self._client = Client(
            Config(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
            )
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AliyunConnector:
        missing = [
            f"PHONESTATUS_{name.upper()}"
            for name in ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_auth_code")
            if not getattr(settings, name)
        ]
        if missing:
            raise AliyunConfigError(
                f"connector aliyun needs {', '.join(missing)}; set them or use connector simulated"
            )
        assert settings.aliyun_access_key_id is not None
        assert settings.aliyun_access_key_secret is not None
        assert settings.aliyun_auth_code is not None
        credentials = AliyunCredentials(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret.get_secret_value(),
            auth_code=settings.aliyun_auth_code,
        )
        return cls(
            credentials=credentials,
            endpoint=settings.aliyun_endpoint,
            protocol=settings.aliyun_protocol,
        )

    async def probe(self, subject: ProbeSubject, *, scene: Scene, deadline: float) -> ProbeOutcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        action = ACTIONS[scene]

        try:
            body = await self._call(action, subject, timeout_seconds=deadline - started)
        except _UpstreamError as exc:
            logger.warning(
                "upstream_query_failed",
                action=action,
                code=exc.code,
                http_status=exc.http_status,
                number=mask_number(subject.value),
            )
            kind = OutcomeKind.REFUSED if exc.is_refusal else OutcomeKind.FAILED
            return self._outcome(kind, exc.code, started)

        code = str(body.get("Code", ""))
        if code in REFUSAL_CODES:
            return self._outcome(OutcomeKind.REFUSED, code, started)
        data = body.get("Data")
        if code != "OK" or not isinstance(data, dict):
            logger.warning("upstream_answer_unusable", action=action, code=code)
            return self._outcome(OutcomeKind.FAILED, code or "InvalidResponse", started)

        return self._read_data(scene, data, started)

    async def aclose(self) -> None:
        # The SDK opens one HTTP session per request, so nothing stays open.
        return None

    async def _call(
        self, action: str, subject: ProbeSubject, *, timeout_seconds: float
    ) -> dict[str, Any]:
        import aiohttp
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.exceptions import DaraException, RetryError
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import TeaException, UnretryableException

        query = {"AuthCode": self._auth_code, "InputNumber": subject.value, "Mask": subject.mask}
        params = Params(
            action=action,
            version=API_VERSION,
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        timeout_ms = max(1, int(timeout_seconds * 1000))
        runtime = RuntimeOptions(
            autoretry=False, read_timeout=timeout_ms, connect_timeout=timeout_ms
        )
        try:
            response = await self._client.call_api_async(
                params, OpenApiRequest(query={k: str(v) for k, v in query.items()}), runtime
            )
        except AlibabaCloudException as exc:
            raise _UpstreamError(
                str(exc.code or "UpstreamError"), getattr(exc, "status_code", None)
            ) from exc
        except (
            DaraException,
            TeaException,
            UnretryableException,
            RetryError,
            aiohttp.ClientError,
            OSError,
        ) as exc:
            raise _UpstreamError("UpstreamUnreachable", None) from exc
        body = response.get("body")
        if not isinstance(body, dict):
            raise _UpstreamError("InvalidResponse", response.get("statusCode"))
        return body

    def _read_data(self, scene: Scene, data: dict[str, Any], started: float) -> ProbeOutcome:
        if scene is Scene.ATTRIBUTE:
            basic = carrier_from_name(data.get("BasicCarrier"))
            ported = data.get("IsNumberPortability")
            return self._outcome(
                OutcomeKind.ANSWERED,
                "OK",
                started,
                state=NetworkState.UNKNOWN,
                carrier=carrier_from_name(data.get("Carrier")) or basic,
                basic_carrier=basic,
                is_ported=ported if isinstance(ported, bool) else None,
                province=data.get("Province") or None,
                city=data.get("City") or None,
            )
        if scene is Scene.VIRTUAL:
            privacy = data.get("IsPrivacyNumber")
            if not isinstance(privacy, bool):
                return self._outcome(OutcomeKind.FAILED, "InvalidResponse", started)
            return self._outcome(
                OutcomeKind.ANSWERED,
                "OK",
                started,
                state=NetworkState.UNKNOWN,
                is_privacy_number=privacy,
            )

        # The LEGACY scene calls ForReal, so its status uses REAL's vocabulary.
        vocabulary = Scene.REAL if scene is Scene.LEGACY else scene
        state = state_for(vocabulary, str(data.get("Status", "")))
        if state is None:
            logger.warning("upstream_answer_unusable", scene=scene.value, status=data.get("Status"))
            return self._outcome(OutcomeKind.FAILED, "OK", started)
        return self._outcome(
            OutcomeKind.ANSWERED,
            "OK",
            started,
            state=state,
            carrier=carrier_from_name(data.get("Carrier")),
        )

    def _outcome(
        self, kind: OutcomeKind, raw_code: str, started: float, **fields: Any
    ) -> ProbeOutcome:
        latency_ms = round((asyncio.get_running_loop().time() - started) * 1000)
        return ProbeOutcome(
            kind=kind, connector=self.name, raw_code=raw_code, latency_ms=latency_ms, **fields
        )


class _UpstreamError(Exception):
    """An SDK error, translated once at the ``_call`` seam."""

    def __init__(self, code: str, http_status: int | None) -> None:
        self.code = code
        self.http_status = http_status
        super().__init__(f"upstream error {code} (HTTP {http_status})")

    @property
    def is_refusal(self) -> bool:
        return self.code in REFUSAL_CODES or self.code.startswith(THROTTLING_PREFIX)
