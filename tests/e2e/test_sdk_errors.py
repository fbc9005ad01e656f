"""Error paths through the official SDKs: replay, skew, throttling, unknown key, and replays racing."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from alibabacloud_dytnsapi20200217 import models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from gateway.signer import Signer
from phonestatus.billing import QueryRecord
from phonestatus.settings import Settings
from phonestatus.storage import create_engine

from .conftest import Server
from .test_python_sdks import SIGNATURE_ALGORITHMS, demo, new_client

pytestmark = pytest.mark.e2e


def for_real(auth_code: str) -> models.PhoneNumberStatusForRealRequest:
    return models.PhoneNumberStatusForRealRequest(
        auth_code=auth_code, input_number="13800138000", mask="NORMAL"
    )


class TestNewSdkErrors:
    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    def test_replayed_nonce_rejected(
        self, server: Server, algorithm: str | None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        nonce = uuid.uuid4().hex
        monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))
        client = new_client(server, demo(server), algorithm)
        first = client.phone_number_status_for_real(for_real(demo(server).auth_code))
        assert first.body.code == "OK"
        with pytest.raises(ClientException) as caught:
            client.phone_number_status_for_real(for_real(demo(server).auth_code))
        assert caught.value.code == "SignatureNonceUsed"
        assert caught.value.status_code == 400

    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    def test_skewed_time_expired(
        self, server: Server, algorithm: str | None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        skewed = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
        monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: skewed))
        client = new_client(server, demo(server), algorithm)
        with pytest.raises(ClientException) as caught:
            client.phone_number_status_for_real(for_real(demo(server).auth_code))
        assert caught.value.code == "InvalidTimeStamp.Expired"

    def test_disabled_key_inactive(self, server: Server) -> None:
        credentials = server.provision()
        server.cli("accesskey", "disable", credentials.access_key_id, json_output=False)
        with pytest.raises(ClientException) as caught:
            new_client(server, credentials, None).phone_number_status_for_real(
                for_real(credentials.auth_code)
            )
        assert caught.value.code == "InvalidAccessKeyId.Inactive"
        assert caught.value.status_code == 400

    def test_throttling_user(self, server_factory: Callable[..., Server]) -> None:
        throttled = server_factory(PHONESTATUS_ACCOUNT_RATE_LIMIT="3/minute")
        credentials = throttled.provision()
        client = new_client(throttled, credentials, None)
        for _ in range(3):
            assert (
                client.phone_number_status_for_real(for_real(credentials.auth_code)).body.code
                == "OK"
            )
        with pytest.raises(ClientException) as caught:
            client.phone_number_status_for_real(for_real(credentials.auth_code))
        assert caught.value.code == "Throttling.User"
        assert caught.value.status_code == 400


class TestOldSdkErrors:
    def test_unknown_key_server_exception(self, server: Server) -> None:
        request = CommonRequest()
        request.set_domain(server.endpoint)
        request.set_version("2020-02-17")
        request.set_action_name("DescribePhoneNumberStatus")
        request.add_query_param("PhoneNumber", "13800138000")
        client = AcsClient("LTAIunknown0000000000000", "secret", "cn-hangzhou")
        with pytest.raises(ServerException) as caught:
            client.do_action_with_exception(request)
        assert caught.value.get_error_code() == "InvalidAccessKeyId.NotFound"
        assert caught.value.get_http_status() == 404


async def count_records(database_url: str, account_id: str) -> int:
    engine = create_engine(Settings(database_url=database_url).sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            statement = sa.select(sa.func.count()).where(QueryRecord.account_id == account_id)
            return int(await connection.scalar(statement) or 0)
    finally:
        await engine.dispose()


class TestReplayRace:
    def test_two_processes_accept_nonce_once(
        self,
        server_factory: Callable[..., Server],
        postgres_databases: object,
        redis_url: str,
    ) -> None:
        database_url = postgres_databases.create()  # type: ignore[attr-defined]
        # Both processes must share the secret key that encrypts AccessKey secrets.
        shared = {
            "PHONESTATUS_DATABASE_URL": database_url,
            "PHONESTATUS_REDIS_URL": redis_url,
            "PHONESTATUS_SECRET_KEY": secrets.token_urlsafe(32),
        }
        first = server_factory(**shared)
        second = server_factory(**shared)
        credentials = first.provision()
        signer = Signer(credentials.access_key_id, credentials.secret)
        params = {"AuthCode": credentials.auth_code, "InputNumber": "13800138000", "Mask": "NORMAL"}

        def send(port: int, query: str) -> str:
            response = httpx.get(f"http://127.0.0.1:{port}/?{query}", timeout=30)
            return str(response.json()["Code"])

        rounds = 20
        with ThreadPoolExecutor(max_workers=2) as pool:
            for _ in range(rounds):
                prepared = signer.v1("PhoneNumberStatusForReal", params)
                codes = sorted(
                    pool.map(send, (first.port, second.port), (prepared.query, prepared.query))
                )
                assert codes == ["OK", "SignatureNonceUsed"]

        assert asyncio.run(count_records(database_url, credentials.account_id)) == rounds
