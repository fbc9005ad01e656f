"""The official Python SDKs against a real server: new SDK (V3 SHA256, V3 SM3, V1) and old core SDK."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from alibabacloud_dytnsapi20200217 import models
from alibabacloud_dytnsapi20200217.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkdytnsapi.request.v20200217.DescribePhoneNumberOperatorAttributeRequest import (
    DescribePhoneNumberOperatorAttributeRequest,
)
from aliyunsdkdytnsapi.request.v20200217.PhoneNumberStatusForRealRequest import (
    PhoneNumberStatusForRealRequest,
)

from phonestatus.numbers import Mask, digest

from .conftest import BROADNET_NUMBER, EXPECTED_STATUS, Credentials, Server

pytestmark = pytest.mark.e2e

# None is the new SDK's default (ACS3-HMAC-SHA256); "v2" selects RPC signature V1.
SIGNATURE_ALGORITHMS = [None, "ACS3-HMAC-SM3", "v2"]
STATUS_CALLS = {
    "ForReal": ("phone_number_status_for_real", models.PhoneNumberStatusForRealRequest),
    "ForSms": ("phone_number_status_for_sms", models.PhoneNumberStatusForSmsRequest),
    "ForVoice": ("phone_number_status_for_voice", models.PhoneNumberStatusForVoiceRequest),
    "ForAccount": ("phone_number_status_for_account", models.PhoneNumberStatusForAccountRequest),
    "ForPublic": ("phone_number_status_for_public", models.PhoneNumberStatusForPublicRequest),
}


def new_client(server: Server, credentials: Credentials, algorithm: str | None) -> Client:
    config = Config(
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.secret,
        endpoint=server.endpoint,
        protocol="http",
    )
    if algorithm is not None:
        config.signature_algorithm = algorithm
    return Client(config)


def demo(server: Server) -> Credentials:
    assert server.demo is not None
    return server.demo


def masked_inputs(number: str) -> list[tuple[str, str]]:
    inputs = [(number, "NORMAL")]
    for mask in (Mask.MD5, Mask.SHA256, Mask.SM3):
        inputs.append((digest(number, mask), mask.value))
    return inputs


class TestNewSdk:
    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    @pytest.mark.parametrize("action", list(STATUS_CALLS))
    def test_status_actions_exact_answers(
        self, server: Server, algorithm: str | None, action: str
    ) -> None:
        client = new_client(server, demo(server), algorithm)
        method_name, request_type = STATUS_CALLS[action]
        for number, (status, carrier) in EXPECTED_STATUS.items():
            request = request_type(
                auth_code=demo(server).auth_code, input_number=number, mask="NORMAL"
            )
            response = getattr(client, method_name)(request)
            assert response.status_code == 200
            assert response.body.code == "OK", response.body.message
            assert response.body.data.carrier == carrier, number
            if action == "ForReal":
                assert response.body.data.status == status, number

    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    def test_for_real_masked_numbers(self, server: Server, algorithm: str | None) -> None:
        client = new_client(server, demo(server), algorithm)
        for value, mask in masked_inputs("13900000001"):
            response = client.phone_number_status_for_real(
                models.PhoneNumberStatusForRealRequest(
                    auth_code=demo(server).auth_code, input_number=value, mask=mask
                )
            )
            assert response.body.code == "OK", mask
            assert response.body.data.status == "SHUTDOWN", mask

    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    def test_operator_attribute_types(self, server: Server, algorithm: str | None) -> None:
        client = new_client(server, demo(server), algorithm)
        for value, mask in masked_inputs("13600000004"):
            response = client.describe_phone_number_operator_attribute(
                models.DescribePhoneNumberOperatorAttributeRequest(
                    auth_code=demo(server).auth_code, input_number=value, mask=mask
                )
            )
            data = response.body.data
            assert response.body.code == "OK", mask
            assert data.basic_carrier == "中国移动"
            assert data.carrier == "中国联通"
            assert data.number_segment == 136
            assert data.is_number_portability is True

    def test_operator_limit_is_http_200(self, server: Server) -> None:
        client = new_client(server, demo(server), None)
        response = client.phone_number_status_for_real(
            models.PhoneNumberStatusForRealRequest(
                auth_code=demo(server).auth_code, input_number=BROADNET_NUMBER, mask="NORMAL"
            )
        )
        assert response.status_code == 200
        assert response.body.code == "OperatorLimit"
        assert response.body.data is None

    @pytest.mark.parametrize("algorithm", SIGNATURE_ALGORITHMS)
    def test_wrong_secret_client_exception(self, server: Server, algorithm: str | None) -> None:
        credentials = demo(server)
        wrong = Credentials(credentials.account_id, credentials.access_key_id, "wrong", "x")
        client = new_client(server, wrong, algorithm)
        with pytest.raises(ClientException) as caught:
            client.phone_number_status_for_real(
                models.PhoneNumberStatusForRealRequest(
                    auth_code=credentials.auth_code, input_number="13800138000", mask="NORMAL"
                )
            )
        assert caught.value.code == "SignatureDoesNotMatch"
        assert caught.value.status_code == 400

    def test_unknown_key_not_found(self, server: Server) -> None:
        unknown = Credentials("acc_x", "LTAIunknown0000000000000", "secret", "x")
        with pytest.raises(ClientException) as caught:
            new_client(server, unknown, None).phone_number_status_for_real(
                models.PhoneNumberStatusForRealRequest(
                    auth_code="x", input_number="13800138000", mask="NORMAL"
                )
            )
        assert caught.value.code == "InvalidAccessKeyId.NotFound"
        assert caught.value.status_code == 404

    def test_feature_disabled_rejected(self, server: Server) -> None:
        credentials = server.provision(feature=False)
        with pytest.raises(ClientException) as caught:
            new_client(server, credentials, None).phone_number_status_for_real(
                models.PhoneNumberStatusForRealRequest(
                    auth_code=credentials.auth_code, input_number="13800138000", mask="NORMAL"
                )
            )
        assert caught.value.code == "BIZ_NOT_OPEN_ERROR"

    def test_malformed_number_names_value(self, server: Server) -> None:
        with pytest.raises(ClientException) as caught:
            new_client(server, demo(server), None).phone_number_status_for_real(
                models.PhoneNumberStatusForRealRequest(
                    auth_code=demo(server).auth_code, input_number="1380013800", mask="NORMAL"
                )
            )
        assert caught.value.code == "MobileNumberIllegal"
        assert "1380013800" in caught.value.message


def old_client(credentials: Credentials, secret: str | None = None) -> AcsClient:
    return AcsClient(credentials.access_key_id, secret or credentials.secret, "cn-hangzhou")


class TestOldSdk:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_common_request_describe_status(self, server: Server, method: str) -> None:
        request = CommonRequest()
        request.set_domain(server.endpoint)
        request.set_version("2020-02-17")
        request.set_action_name("DescribePhoneNumberStatus")
        request.set_method(method)
        request.add_query_param("PhoneNumber", "13700000002")
        body = json.loads(old_client(demo(server)).do_action_with_exception(request))
        assert body["Code"] == "OK"
        assert body["PhoneStatus"]["Status"] == "NOT_EXIST"
        assert body["PhoneStatus"]["Carrier"] == "CMCC"
        assert isinstance(body["PhoneStatus"]["SerialId"], str)

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_common_request_for_real_body_params(self, server: Server, method: str) -> None:
        request = CommonRequest()
        request.set_domain(server.endpoint)
        request.set_version("2020-02-17")
        request.set_action_name("PhoneNumberStatusForReal")
        request.set_method(method)
        request.add_query_param("AuthCode", demo(server).auth_code)
        request.add_query_param("Mask", "NORMAL")
        if method == "POST":
            request.add_body_params("InputNumber", "15000000003")
        else:
            request.add_query_param("InputNumber", "15000000003")
        body = json.loads(old_client(demo(server)).do_action_with_exception(request))
        assert body["Code"] == "OK"
        assert body["Data"] == {"Status": "POWER_OFF", "Carrier": "CMCC"}

    def test_typed_request_for_real(self, server: Server) -> None:
        request = PhoneNumberStatusForRealRequest()
        request.set_endpoint(server.endpoint)
        request.set_AuthCode(demo(server).auth_code)
        request.set_InputNumber(hashlib.sha256(b"13800138000").hexdigest())
        request.set_Mask("SHA256")
        body = json.loads(old_client(demo(server)).do_action_with_exception(request))
        assert body["Data"] == {"Status": "NORMAL", "Carrier": "CMCC"}

    def test_typed_request_operator_attribute(self, server: Server) -> None:
        request = DescribePhoneNumberOperatorAttributeRequest()
        request.set_endpoint(server.endpoint)
        request.set_AuthCode(demo(server).auth_code)
        request.set_InputNumber("13800138000")
        request.set_Mask("NORMAL")
        body = json.loads(old_client(demo(server)).do_action_with_exception(request))
        assert body["Data"]["NumberSegment"] == 138
        assert body["Data"]["IsNumberPortability"] is False

    def test_wrong_secret_invalid_access_key_secret(self, server: Server) -> None:
        # The old SDK compares our string-to-sign with its own and renames the error.
        request = PhoneNumberStatusForRealRequest()
        request.set_endpoint(server.endpoint)
        request.set_AuthCode(demo(server).auth_code)
        request.set_InputNumber("13800138000")
        request.set_Mask("NORMAL")
        with pytest.raises(ServerException) as caught:
            old_client(demo(server), secret="wrong").do_action_with_exception(request)
        assert caught.value.get_error_code() == "InvalidAccessKeySecret"
        assert caught.value.get_http_status() == 400


class TestServerLog:
    def test_log_lines_are_json_with_request_id(self, server: Server) -> None:
        client = new_client(server, demo(server), None)
        response = client.phone_number_status_for_real(
            models.PhoneNumberStatusForRealRequest(
                auth_code=demo(server).auth_code, input_number="13800138000", mask="NORMAL"
            )
        )
        request_id = response.body.request_id
        assert request_id

        # serve writes its lines from a background thread every 50 ms.
        entries: list[dict[str, object]] = []
        for _ in range(100):
            lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
            entries = [json.loads(line) for line in lines]
            if any(entry.get("request_id") == request_id for entry in entries):
                break
            time.sleep(0.05)

        [line] = [entry for entry in entries if entry.get("request_id") == request_id]
        assert line["event"] == "gateway_request"
        assert line["code"] == "OK"
        assert any(entry.get("logger") == "uvicorn.error" for entry in entries)
