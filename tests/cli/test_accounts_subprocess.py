"""A few commands run as real `phonestatus` processes, configured only through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMMAND = [sys.executable, "-m", "phonestatus.cli"]


def run(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env={**os.environ, **env},
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_json(env: dict[str, str], *args: str, input: str | None = None) -> dict[str, Any]:
    completed = run(env, *args, "--json", input=input)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert len(lines) == 1, completed.stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


class TestAccountsProcess:
    def test_process_creates_account_and_accesskey(self, cli_env: dict[str, str]) -> None:
        account = run_json(cli_env, "account", "create", "--name", "Process Ltd", "--verified")
        account_id = str(account["AccountId"])

        access_key = run_json(cli_env, "accesskey", "create", account_id)
        listed = run_json(cli_env, "accesskey", "list", account_id)

        assert [item["AccessKeyId"] for item in listed["AccessKeys"]] == [access_key["AccessKeyId"]]

    def test_process_missing_account_exits_nonzero(self, cli_env: dict[str, str]) -> None:
        completed = run(cli_env, "account", "show", "acc_doesnotexist00")

        assert completed.returncode == 1
        assert completed.stdout == ""
        assert completed.stderr == "error: account 'acc_doesnotexist00' not found\n"

    def test_process_user_create_reads_stdin(self, cli_env: dict[str, str]) -> None:
        account_id = str(
            run_json(cli_env, "account", "create", "--name", "Process Ltd")["AccountId"]
        )

        payload = run_json(
            cli_env,
            "user",
            "create",
            account_id,
            "--username",
            f"proc-{account_id[-8:]}",
            "--password-stdin",
            input="correct horse battery\n",
        )

        assert payload["Username"] == f"proc-{account_id[-8:]}"

    def test_process_quickstart_is_idempotent(self, fresh_cli_env: dict[str, str]) -> None:
        first = run_json(fresh_cli_env, "quickstart")

        second = run_json(fresh_cli_env, "quickstart")

        assert second == first
        assert str(first["AccessKeyId"]).startswith("LTAI")


class TestFreshDataDir:
    def test_process_db_upgrade_creates_sqlite_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {
            "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
            "PHONESTATUS_ENVIRONMENT": "development",
        }
        monkeypatch.delenv("PHONESTATUS_DATABASE_URL", raising=False)
        monkeypatch.delenv("PHONESTATUS_SECRET_KEY", raising=False)

        completed = run(env, "db", "upgrade")

        assert completed.returncode == 0, completed.stderr
        assert (tmp_path / "data" / "phonestatus.sqlite3").is_file()

    def test_process_quickstart_generates_secret_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {
            "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
            "PHONESTATUS_ENVIRONMENT": "development",
        }
        monkeypatch.delenv("PHONESTATUS_DATABASE_URL", raising=False)
        monkeypatch.delenv("PHONESTATUS_SECRET_KEY", raising=False)

        first = run_json(env, "quickstart")
        second = run_json(env, "quickstart")

        assert (tmp_path / "data" / "secret.key").is_file()
        assert second["AccessKeySecret"] == first["AccessKeySecret"]

    def test_process_placeholder_key_in_production_fails(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {
            "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
            "PHONESTATUS_ENVIRONMENT": "production",
            "PHONESTATUS_SECRET_KEY": "changeme",
        }
        monkeypatch.delenv("PHONESTATUS_DATABASE_URL", raising=False)

        completed = run(env, "account", "list")

        assert completed.returncode == 1
        assert "PHONESTATUS_SECRET_KEY is a placeholder" in completed.stderr
        assert "changeme" not in completed.stderr
