"""``phonestatus query``: human and JSON output, exit statuses, settings from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from phonestatus.commands import query as query_command
from phonestatus.numbers import Mask, digest

OVERRIDES = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
13900000003,,,sms,
13900000005,NORMAL,,,CUCC
"""
JSON_FIELDS = {
    "Number",
    "Status",
    "Carrier",
    "BasicCarrier",
    "IsNumberPortability",
    "Province",
    "City",
    "Connector",
    "RawCode",
    "LatencyMs",
}


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test entry point with the query command only."""

    query_command.register(app)
    return app


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(OVERRIDES, encoding="utf-8")
    return {
        "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0",
        "PHONESTATUS_SIMULATOR_OVERRIDES": str(overrides),
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
        "PHONESTATUS_REDIS_URL": "",
    }


def _invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["query", *args], env=env)
    return result.exit_code, result.stdout


class TestQueryCommand:
    def test_query_json_fields(self, env: dict[str, str]) -> None:
        code, output = _invoke(env, "+86 139 0000 0005", "--json")
        payload = json.loads(output)
        assert code == 0
        assert set(payload) >= JSON_FIELDS
        assert payload["Number"] == "13900000005"
        assert payload["Status"] == "NORMAL"
        assert payload["Carrier"] == "CUCC"
        assert payload["BasicCarrier"] == "CMCC"
        assert payload["IsNumberPortability"] is True
        assert payload["Connector"] == "simulated"
        assert payload["RawCode"] == "OK"
        assert isinstance(payload["LatencyMs"], int)

    def test_query_scene_option(self, env: dict[str, str]) -> None:
        _, sms = _invoke(env, "13900000003", "--scene", "sms", "--json")
        _, voice = _invoke(env, "13900000003", "--scene", "voice", "--json")
        assert json.loads(sms)["Status"] == "SHUTDOWN"
        assert json.loads(voice)["Status"] == "NORMAL"

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    def test_query_digest_mask(self, env: dict[str, str], mask: Mask) -> None:
        value = digest("13900000005", mask)
        code, output = _invoke(env, value.upper(), "--mask", mask.value, "--json")
        payload = json.loads(output)
        assert code == 0
        assert payload["Number"] == value
        assert payload["Carrier"] == "CUCC"

    def test_query_human_output(self, env: dict[str, str]) -> None:
        code, output = _invoke(env, "13800138000")
        assert code == 0
        assert "NORMAL (正常)" in output
        assert "13800138000" in output

    @pytest.mark.parametrize("text", ["12345", "not a number", "2380013800"])
    def test_query_invalid_number_json(self, env: dict[str, str], text: str) -> None:
        code, output = _invoke(env, text, "--json")
        payload = json.loads(output)
        assert code == 2
        assert payload["Code"] == "MobileNumberIllegal"
        assert text in payload["Message"]

    def test_query_invalid_digest_json(self, env: dict[str, str]) -> None:
        code, output = _invoke(env, "abc", "--mask", "MD5", "--json")
        payload = json.loads(output)
        assert code == 2
        assert payload["Code"] == "MobileNumberTypeNotMatch"
        assert "abc" in payload["Message"]

    def test_query_invalid_number_plain(self, env: dict[str, str]) -> None:
        result = CliRunner().invoke(_app(), ["query", "12345"], env=env)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "12345" in result.stderr

    def test_query_broadnet_operator_limit(self, env: dict[str, str]) -> None:
        code, output = _invoke(env, "19212345678", "--scene", "sms", "--json")
        assert code == 1
        assert json.loads(output)["Code"] == "OperatorLimit"

    def test_query_bad_overrides_file(self, env: dict[str, str], tmp_path: Path) -> None:
        broken = tmp_path / "broken.csv"
        broken.write_text("number,status\n13800138000,NORMAL\n", encoding="utf-8")
        result = CliRunner().invoke(
            _app(),
            ["query", "13800138000"],
            env={**env, "PHONESTATUS_SIMULATOR_OVERRIDES": str(broken)},
        )
        assert result.exit_code == 1
        assert "missing columns" in result.stderr
