from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonestatus.gateway.params import (
    ParameterEncodingError,
    body_is_form,
    decode_pairs,
    parse_params,
)


class TestParseParams:
    def test_parse_params_keeps_blank_values(self) -> None:
        params = parse_params(b"SignatureType=&Action=X", b"", None)
        assert params.merged == {"SignatureType": "", "Action": "X"}

    def test_parse_params_plus_is_space(self) -> None:
        params = parse_params(b"AuthCode=a+b%2Bc", b"", None)
        assert params.get("AuthCode") == "a b+c"

    def test_parse_params_merges_form_body(self) -> None:
        params = parse_params(
            b"Action=X", b"Mask=NORMAL&Signature=abc%3D", "application/x-www-form-urlencoded"
        )
        assert params.merged == {"Action": "X", "Mask": "NORMAL", "Signature": "abc="}
        assert params.query == (("Action", "X"),)

    def test_parse_params_body_wins_over_query(self) -> None:
        params = parse_params(
            b"Mask=MD5", b"Mask=NORMAL", "application/x-www-form-urlencoded; charset=UTF-8"
        )
        assert params.get("Mask") == "NORMAL"

    def test_parse_params_form_like_body_without_content_type(self) -> None:
        params = parse_params(b"", b"PhoneNumber=13800138000&RegionId=", None)
        assert params.merged == {"PhoneNumber": "13800138000", "RegionId": ""}

    def test_parse_params_ignores_json_body(self) -> None:
        params = parse_params(b"A=1", b'{"B": "2"}', "application/json")
        assert params.merged == {"A": "1"}

    def test_parse_params_decodes_utf8(self) -> None:
        params = parse_params(b"InputNumber=%E4%B8%AD", b"", None)
        assert params.get("InputNumber") == "中"

    def test_parse_params_invalid_utf8_raises(self) -> None:
        with pytest.raises(ParameterEncodingError):
            parse_params(b"InputNumber=%FF%FE", b"", None)

    def test_parse_params_too_many_fields_raises(self) -> None:
        query = "&".join(f"k{i}=v" for i in range(500)).encode()
        with pytest.raises(ParameterEncodingError):
            parse_params(query, b"", None)


class TestBodyIsForm:
    @pytest.mark.parametrize(
        ("content_type", "body", "expected"),
        [
            (None, b"a=1&b=2", True),
            (None, b"a=1", True),
            (None, b"hello world", False),
            (None, b"", False),
            (None, b'{"a": 1}', False),
            ("text/plain", b"a=1", False),
            ("APPLICATION/X-WWW-FORM-URLENCODED", b"a=1", True),
        ],
    )
    def test_body_is_form_detects_forms(
        self, content_type: str | None, body: bytes, expected: bool
    ) -> None:
        assert body_is_form(content_type, body) is expected


class TestDecodePairsMatchesParseQsl:
    @given(
        st.lists(
            st.sampled_from([*"aZ09=&+%._~-;é ", "%2B", "%3D", "%26", "%E4%B8%AD", "%FF", "%4"]),
            max_size=40,
        ).map("".join)
    )
    def test_decode_pairs_equals_parse_qsl(self, raw: str) -> None:
        try:
            expected: list[tuple[str, str]] | None = parse_qsl(
                raw, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=200
            )
        except (UnicodeDecodeError, ValueError):
            expected = None
        if expected is None:
            with pytest.raises(ParameterEncodingError):
                decode_pairs(raw)
        else:
            assert decode_pairs(raw) == expected

    def test_decode_pairs_invalid_utf8_escape_raises(self) -> None:
        with pytest.raises(ParameterEncodingError):
            decode_pairs(b"Action=%FF")

    def test_decode_pairs_too_many_fields_raises(self) -> None:
        with pytest.raises(ParameterEncodingError, match="more than 200"):
            decode_pairs("&".join(f"k{index}=v" for index in range(201)))
