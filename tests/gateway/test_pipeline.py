"""The gateway pipeline end to end in process: guards, actions, records, envelopes."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from structlog.testing import capture_logs

from phonestatus.accounts.models import Account, AccountState
from phonestatus.gateway.signing import V3Algorithm

from .conftest import GatewayHarness

NUMBER = "13800138000"
BROADNET_NUMBER = "19212345678"
REQUEST_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


def status_params(auth_code: str, number: str = NUMBER, mask: str = "NORMAL") -> dict[str, str]:
    return {"AuthCode": auth_code, "InputNumber": number, "Mask": mask}


class TestStatusActions:
    async def test_for_real_v1_get_answers_status(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        body = response.json()
        assert response.status_code == 200
        assert body["Code"] == "OK"
        assert body["Message"] == "OK"
        assert body["Data"]["Carrier"] == "CMCC"
        assert isinstance(body["Data"]["Status"], str)
        assert REQUEST_ID.fullmatch(body["RequestId"])
        assert response.headers["x-acs-request-id"] == body["RequestId"]

    async def test_for_real_records_query(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        records = await gateway.records(tenant.account_id)
        assert len(records) == 1
        record = records[0]
        assert record.request_id == response.json()["RequestId"]
        assert record.action == "PhoneNumberStatusForReal"
        assert record.code == "OK"
        assert record.masked_number == "138****8000"
        assert record.billable is (record.status != "UNKNOWN")
        assert record.source == "api"

    async def test_for_real_v3_sha256_and_sm3(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        for algorithm in V3Algorithm:
            prepared = tenant.signer.v3(
                "PhoneNumberStatusForSms", status_params(tenant.auth_code), algorithm=algorithm
            )
            response = await gateway.send(prepared)
            assert response.status_code == 200, response.text
            assert response.json()["Code"] == "OK"

    async def test_for_voice_pop_core_style_form_body(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        prepared = tenant.signer.v1(
            "PhoneNumberStatusForVoice",
            status_params(tenant.auth_code),
            method="POST",
            in_body=True,
        )
        response = await gateway.send(prepared)
        assert response.status_code == 200, response.text
        assert response.json()["Code"] == "OK"

    async def test_for_account_md5_digest(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        digest = hashlib.md5(NUMBER.encode(), usedforsecurity=False).hexdigest().upper()
        prepared = tenant.signer.v1(
            "PhoneNumberStatusForAccount", status_params(tenant.auth_code, digest, "MD5")
        )
        response = await gateway.send(prepared)
        assert response.status_code == 200, response.text
        assert response.json()["Code"] == "OK"

    async def test_for_virtual_answers_boolean(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForVirtual", status_params(tenant.auth_code))
        )
        body = response.json()
        assert body["Code"] == "OK"
        assert isinstance(body["Data"]["IsPrivacyNumber"], bool)

    async def test_broadnet_is_operator_limit_http_200(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", status_params(tenant.auth_code, BROADNET_NUMBER)
            )
        )
        body = response.json()
        assert response.status_code == 200
        assert body["Code"] == "OperatorLimit"
        assert "Data" not in body
        records = await gateway.records(tenant.account_id)
        assert [record.billable for record in records] == [False]

    async def test_malformed_number_names_value(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", status_params(tenant.auth_code, "1380013800")
            )
        )
        body = response.json()
        assert response.status_code == 400
        assert body["Code"] == "MobileNumberIllegal"
        assert "1380013800" in body["Message"]
        assert set(body) == ERROR_KEYS

    async def test_bad_mask_codes_per_action(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        expected = {
            "PhoneNumberStatusForReal": "EncyrptTypeIllegal",
            "PhoneNumberStatusForVoice": "EncryptTypeIllegal",
            "PhoneNumberStatusForPublic": "InvalidParameter",
        }
        for action, code in expected.items():
            response = await gateway.send(
                tenant.signer.v1(action, status_params(tenant.auth_code, NUMBER, "CRC32"))
            )
            assert response.status_code == 400
            assert response.json()["Code"] == code, action

    async def test_digest_of_wrong_length(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", status_params(tenant.auth_code, "abc", "SHA256")
            )
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "MobileNumberTypeNotMatch"

    async def test_missing_input_number(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", {"AuthCode": tenant.auth_code, "Mask": "NORMAL"}
            )
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "MissingInputNumber"


class TestAttributeActions:
    async def test_operator_attribute_exact_types(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v3(
                "DescribePhoneNumberOperatorAttribute", status_params(tenant.auth_code)
            )
        )
        data = response.json()["Data"]
        assert data["BasicCarrier"] == "中国移动"
        assert data["NumberSegment"] == 138
        assert type(data["NumberSegment"]) is int
        assert type(data["IsNumberPortability"]) is bool
        assert isinstance(data["Province"], str)

    async def test_legacy_attribute_seven_digit_segment(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("DescribePhoneNumberAttribute", {"PhoneNumber": NUMBER})
        )
        body = response.json()
        assert body["Code"] == "OK"
        assert body["PhoneNumberAttribute"]["NumberSegment"] == 1380013


class TestLegacyStatus:
    async def test_describe_status_all_strings(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("DescribePhoneNumberStatus", {"PhoneNumber": NUMBER}, method="POST")
        )
        body = response.json()
        assert body["Code"] == "OK"
        phone_status = body["PhoneStatus"]
        assert phone_status["Status"] in {"NORMAL", "SHUTDOWN", "NOT_EXIST"}
        assert phone_status["Carrier"] == "CMCC"
        assert re.fullmatch(r"[0-9]{13}", phone_status["SerialId"])

    async def test_describe_status_bad_number_http_200(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("DescribePhoneNumberStatus", {"PhoneNumber": "abc"})
        )
        assert response.status_code == 200
        assert response.json()["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"


class TestEmptyNumberAndAuthCodes:
    async def test_empty_number_needs_named_auth_code(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("DescribeEmptyNumber", status_params(tenant.auth_code))
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "AuthCodeAndApiNotMatch"

    async def test_empty_number_answers_status(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision(auth_code_actions=["DescribeEmptyNumber"])
        response = await gateway.send(
            tenant.signer.v1("DescribeEmptyNumber", status_params(tenant.auth_code))
        )
        data = response.json()["Data"]
        assert data["Number"] == NUMBER
        assert data["Status"] in {"EMPTY", "NORMAL", "SUSPECT_EMPTY", "UNKNOWN"}

    async def test_available_auth_codes_lists_code(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(tenant.signer.v3("QueryAvailableAuthCode", {}))
        body = response.json()
        assert body["Success"] is True
        assert body["Data"] == [tenant.auth_code]

    async def test_unknown_auth_code_recorded_free(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params("NOPE"))
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "AuthCodeNotExist"
        records = await gateway.records(tenant.account_id)
        assert [(record.code, record.billable) for record in records] == [
            ("AuthCodeNotExist", False)
        ]

    async def test_other_accounts_auth_code_not_found(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        other = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params(other.auth_code))
        )
        assert response.json()["Code"] == "AuthCodeNotExist"


class TestGuards:
    async def test_replay_rejected_without_record(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        prepared = tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        first = await gateway.send(prepared)
        second = await gateway.send(prepared)
        assert first.json()["Code"] == "OK"
        assert second.status_code == 400
        assert second.json()["Code"] == "SignatureNonceUsed"
        assert len(await gateway.records(tenant.account_id)) == 1

    async def test_feature_disabled_rejected(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision(feature=False)
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "BIZ_NOT_OPEN_ERROR"
        assert await gateway.records(tenant.account_id) == []

    async def test_arrears_rejected(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        async with gateway.services.session_factory() as session, session.begin():
            await session.execute(
                sa.update(Account)
                .where(Account.id == tenant.account_id)
                .values(state=AccountState.SUSPENDED)
            )
        response = await gateway.send(
            tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "Account.Arrearage"
        assert await gateway.records(tenant.account_id) == []

    async def test_account_rate_limit_throttles(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        async with gateway.services.session_factory() as session, session.begin():
            await session.execute(
                sa.update(Account)
                .where(Account.id == tenant.account_id)
                .values(rate_limit="2/minute")
            )
        codes = []
        for _ in range(3):
            response = await gateway.send(
                tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
            )
            codes.append((response.status_code, response.json()["Code"]))
        assert codes == [(200, "OK"), (200, "OK"), (400, "Throttling.User")]
        assert len(await gateway.records(tenant.account_id)) == 2

    async def test_wrong_secret_signature_mismatch(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        signer = type(tenant.signer)(tenant.signer.access_key_id, "wrong-secret")
        response = await gateway.send(
            signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        body = response.json()
        assert response.status_code == 400
        assert body["Code"] == "SignatureDoesNotMatch"
        assert body["Message"].split(":", 1)[1].startswith("GET&%2F&AccessKeyId%3D")

    async def test_unknown_key_404(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        signer = type(tenant.signer)("LTAInobody", "x")
        response = await gateway.send(
            signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
        )
        assert response.status_code == 404
        assert response.json()["Code"] == "InvalidAccessKeyId.NotFound"

    async def test_skewed_time_expired(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        moment = datetime.now(UTC) - timedelta(minutes=20)
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", status_params(tenant.auth_code), moment=moment
            )
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "InvalidTimeStamp.Expired"

    async def test_localized_timestamp_format_400(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal",
                status_params(tenant.auth_code),
                extra={"Timestamp": "2024年1月1日 08:00:00"},
            )
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "InvalidTimeStamp.Format"


class TestProtocol:
    async def test_unknown_action_404(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(tenant.signer.v1("DescribeNothing", {}))
        assert response.status_code == 404
        assert response.json()["Code"] == "InvalidAction.NotFound"

    async def test_wrong_version_rejected(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal",
                status_params(tenant.auth_code),
                extra={"Version": "2017-05-25"},
            )
        )
        assert response.status_code == 400
        assert response.json()["Code"] == "InvalidVersion"

    async def test_xml_format_answers_xml(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal",
                status_params(tenant.auth_code),
                extra={"Format": "XML"},
            )
        )
        assert response.headers["content-type"] == "text/xml;charset=utf-8"
        assert b"<PhoneNumberStatusForRealResponse><RequestId>" in response.content
        assert b"<Code>OK</Code>" in response.content

    async def test_xml_error_uses_error_root(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        response = await gateway.send(
            tenant.signer.v1(
                "PhoneNumberStatusForReal", status_params("NOPE"), extra={"Format": "xml"}
            )
        )
        assert response.status_code == 400
        assert response.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?><Error>")

    async def test_unsupported_method_envelope(self, gateway: GatewayHarness) -> None:
        response = await gateway.client.put("/")
        assert response.status_code == 400
        assert response.json()["Code"] == "UnsupportedHTTPMethod"
        assert REQUEST_ID.fullmatch(response.json()["RequestId"])

    async def test_invalid_utf8_query_400(self, gateway: GatewayHarness) -> None:
        response = await gateway.client.get("/?Action=%FF")
        assert response.status_code == 400
        assert response.json()["Code"] == "InvalidParameter"

    async def test_log_line_has_request_id(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        with capture_logs() as logs:
            response = await gateway.send(
                tenant.signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
            )
        lines = [entry for entry in logs if entry["event"] == "gateway_request"]
        assert len(lines) == 1
        assert lines[0]["request_id"] == response.json()["RequestId"]
        assert lines[0]["access_key_id"] == tenant.signer.access_key_id
        assert NUMBER not in repr(lines[0])

    async def test_log_line_of_rejected_request_names_claimed_key(
        self, gateway: GatewayHarness
    ) -> None:
        tenant = await gateway.provision()
        signer = type(tenant.signer)(tenant.signer.access_key_id, "wrong-secret")
        with capture_logs() as logs:
            response = await gateway.send(
                signer.v1("PhoneNumberStatusForReal", status_params(tenant.auth_code))
            )
        lines = [entry for entry in logs if entry["event"] == "gateway_request"]
        assert response.json()["Code"] == "SignatureDoesNotMatch"
        assert len(lines) == 1
        assert lines[0]["access_key_id"] == tenant.signer.access_key_id
        assert lines[0]["action"] == "PhoneNumberStatusForReal"
        assert lines[0]["account_id"] is None
        assert "wrong-secret" not in repr(lines[0])
