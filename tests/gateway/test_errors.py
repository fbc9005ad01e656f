from __future__ import annotations

import re
from http import HTTPStatus

from phonestatus.gateway.errors import (
    BUSINESS_FAILURES,
    Dialect,
    Failure,
    GatewayError,
    Problem,
    error_body,
    new_request_id,
)


class TestGatewayError:
    def test_signature_mismatch_message_ends_with_string_to_sign(self) -> None:
        error = GatewayError(Failure.SIGNATURE_MISMATCH, string_to_sign="GET&%2F&A%3D1")
        assert error.message == (
            "Specified signature is not matched with our calculation. "
            "server string to sign is:GET&%2F&A%3D1"
        )
        assert error.message.count(":") == 1

    def test_missing_parameter_names_parameter(self) -> None:
        error = GatewayError(Failure.MISSING_PARAMETER, name="AuthCode")
        assert error.code == "MissingAuthCode"
        assert error.message == "AuthCode is mandatory for this action."
        assert error.http_status is HTTPStatus.BAD_REQUEST

    def test_detail_follows_message(self) -> None:
        error = GatewayError(Failure.MOBILE_NUMBER_ILLEGAL, detail="Got '123'.")
        assert error.message == "Wrong format of phone number: Got '123'."

    def test_operator_limit_is_soft(self) -> None:
        error = GatewayError(Failure.OPERATOR_LIMIT)
        assert error.is_soft
        assert error.http_status is HTTPStatus.OK

    def test_unknown_access_key_is_404(self) -> None:
        assert GatewayError(Failure.ACCESS_KEY_NOT_FOUND).http_status is HTTPStatus.NOT_FOUND


class TestBusinessFailures:
    def test_every_dialect_covers_every_problem(self) -> None:
        for dialect in Dialect:
            assert set(BUSINESS_FAILURES[dialect]) == set(Problem), dialect

    def test_voice_uses_correct_spelling(self) -> None:
        error = GatewayError.business(Problem.INVALID_MASK, Dialect.VOICE)
        assert error.code == "EncryptTypeIllegal"

    def test_status_uses_documented_misspelling(self) -> None:
        error = GatewayError.business(Problem.INVALID_MASK, Dialect.STATUS)
        assert error.code == "EncyrptTypeIllegal"

    def test_legacy_codes_are_soft(self) -> None:
        error = GatewayError.business(Problem.MALFORMED_NUMBER, Dialect.LEGACY)
        assert error.code == "isv.MOBILE_NUMBER_ILLEGAL"
        assert error.is_soft


class TestErrorBody:
    def test_error_body_has_five_string_fields(self) -> None:
        body = error_body(GatewayError(Failure.NONCE_USED), request_id="R", host_id="H")
        assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
        assert all(isinstance(value, str) for value in body.values())

    def test_soft_error_body_has_no_host(self) -> None:
        body = error_body(GatewayError(Failure.OPERATOR_LIMIT), request_id="R", host_id="H")
        assert body == {
            "RequestId": "R",
            "Code": "OperatorLimit",
            "Message": "The number is limited by the operator.",
        }


class TestNewRequestId:
    def test_new_request_id_is_uppercase_uuid(self) -> None:
        request_id = new_request_id()
        assert re.fullmatch(
            r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", request_id
        )

    def test_new_request_id_is_unique(self) -> None:
        assert new_request_id() != new_request_id()
