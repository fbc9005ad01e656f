from __future__ import annotations

import json

import pytest

from phonestatus.gateway.envelope import ResponseFormat, parse_format, render, to_xml
from phonestatus.gateway.errors import GatewayError


class TestParseFormat:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, ResponseFormat.JSON),
            ("", ResponseFormat.JSON),
            ("json", ResponseFormat.JSON),
            ("JSON", ResponseFormat.JSON),
            ("xml", ResponseFormat.XML),
            ("XML", ResponseFormat.XML),
        ],
    )
    def test_parse_format_is_case_insensitive(
        self, value: str | None, expected: ResponseFormat
    ) -> None:
        assert parse_format(value) is expected

    def test_parse_format_unknown_raises(self) -> None:
        with pytest.raises(GatewayError) as caught:
            parse_format("yaml")
        assert caught.value.code == "InvalidParameter.Format"


class TestRender:
    def test_render_json_keeps_types(self) -> None:
        body = {"RequestId": "R", "Data": {"NumberSegment": 139, "IsNumberPortability": False}}
        response = render(
            body, status=200, response_format=ResponseFormat.JSON, action="A", request_id="R"
        )
        assert response.headers["content-type"] == "application/json;charset=utf-8"
        assert response.headers["x-acs-request-id"] == "R"
        assert json.loads(response.body) == body

    def test_render_json_keeps_chinese(self) -> None:
        response = render(
            {"City": "杭州"},
            status=200,
            response_format=ResponseFormat.JSON,
            action="A",
            request_id="R",
        )
        assert "杭州".encode() in response.body

    def test_render_xml_success_root_is_action_response(self) -> None:
        response = render(
            {"RequestId": "R", "Code": "OK"},
            status=200,
            response_format=ResponseFormat.XML,
            action="PhoneNumberStatusForReal",
            request_id="R",
        )
        assert response.headers["content-type"] == "text/xml;charset=utf-8"
        assert response.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        assert b"<PhoneNumberStatusForRealResponse><RequestId>R</RequestId>" in response.body

    def test_render_xml_error_root_is_error(self) -> None:
        response = render(
            {"RequestId": "R", "Recommend": "see docs"},
            status=400,
            response_format=ResponseFormat.XML,
            action="PhoneNumberStatusForReal",
            request_id="R",
        )
        assert b"<Error><RequestId>R</RequestId>" in response.body
        assert b"<Recommend><![CDATA[see docs]]></Recommend>" in response.body


class TestToXml:
    def test_to_xml_escapes_and_renders_types(self) -> None:
        xml = to_xml(
            "Root",
            {"Message": "a<b & c", "Flag": True, "Count": 3, "Data": ["x", "y"], "None": None},
        )
        assert xml == (
            b"<?xml version='1.0' encoding='UTF-8'?><Root><Message>a&lt;b &amp; c</Message>"
            b"<Flag>true</Flag><Count>3</Count><Data>x</Data><Data>y</Data></Root>"
        )

    def test_to_xml_replaces_control_characters(self) -> None:
        assert b"\x01" not in to_xml("Root", {"Message": "bad\x01value"})
