"""``@alicloud/pop-core`` under Node.js against a real server, GET and POST."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import BROADNET_NUMBER, Server

pytestmark = pytest.mark.e2e

CLIENT_SCRIPT = Path(__file__).with_name("popcore_client.js")
REPOSITORY = Path(__file__).resolve().parents[2]
POP_CORE = REPOSITORY / "node_modules" / "@alicloud" / "pop-core"
NODE = shutil.which("node")


def run_pop_core(server: Server, calls: list[dict[str, Any]], *, secret: str | None = None) -> Any:
    if NODE is None:
        pytest.skip("node is not installed, so the @alicloud/pop-core tests cannot run")
    if not POP_CORE.exists():
        pytest.fail(
            "node_modules/@alicloud/pop-core is missing; run `npm install` (make test does)"
        )
    assert server.demo is not None
    config = {
        "endpoint": f"http://{server.endpoint}",
        "accessKeyId": server.demo.access_key_id,
        "accessKeySecret": secret or server.demo.secret,
        "calls": calls,
    }
    completed = subprocess.run(
        [NODE, str(CLIENT_SCRIPT), json.dumps(config)],
        capture_output=True,
        check=False,
        timeout=120,
        cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return json.loads(completed.stdout)


class TestPopCore:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_status_and_legacy_actions(self, server: Server, method: str) -> None:
        assert server.demo is not None
        auth_code = server.demo.auth_code
        calls = [
            {
                "action": "PhoneNumberStatusForReal",
                "params": {"AuthCode": auth_code, "InputNumber": "13900000001", "Mask": "NORMAL"},
                "method": method,
            },
            {
                # Values with space, '*', '~', '/', '+', '&', '=' and non-ASCII must verify.
                "action": "PhoneNumberStatusForSms",
                "params": {
                    "AuthCode": auth_code,
                    "InputNumber": "13800138000",
                    "Mask": "NORMAL",
                    "OwnerId": "a b*~/+&=中",
                },
                "method": method,
            },
            {
                "action": "DescribePhoneNumberStatus",
                "params": {"PhoneNumber": "13700000002"},
                "method": method,
            },
        ]
        results = run_pop_core(server, calls)
        assert results[0]["ok"] is True, results[0]
        assert results[0] == {
            "ok": True,
            "body": {
                "RequestId": results[0]["body"]["RequestId"],
                "Code": "OK",
                "Message": "OK",
                "Data": {"Status": "SHUTDOWN", "Carrier": "CMCC"},
            },
        }
        assert results[1]["ok"] is True
        assert results[1]["body"]["Data"]["Carrier"] == "CMCC"
        assert results[2]["body"]["PhoneStatus"]["Status"] == "NOT_EXIST"

    def test_operator_limit_raises(self, server: Server) -> None:
        assert server.demo is not None
        calls = [
            {
                "action": "PhoneNumberStatusForReal",
                "params": {
                    "AuthCode": server.demo.auth_code,
                    "InputNumber": BROADNET_NUMBER,
                    "Mask": "NORMAL",
                },
                "method": "POST",
            }
        ]
        [result] = run_pop_core(server, calls)
        assert result["ok"] is False
        assert result["code"] == "OperatorLimit"
        assert result["data"]["Code"] == "OperatorLimit"

    def test_wrong_secret_signature_mismatch(self, server: Server) -> None:
        calls = [{"action": "DescribePhoneNumberStatus", "params": {"PhoneNumber": "13800138000"}}]
        [result] = run_pop_core(server, calls, secret="wrong")
        assert result["ok"] is False
        assert result["code"] == "SignatureDoesNotMatch"
        assert result["data"]["Message"].startswith(
            "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&"
        )
