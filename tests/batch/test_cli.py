from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from phonestatus.cli import app

from .conftest import write_numbers

NUMBERS = ["13800138000", "13912345678", "13800138000", "1.38001E+10"]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PHONESTATUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHONESTATUS_SECRET_KEY", "cli-test-secret-key-0123456789abcdef")
    monkeypatch.setenv("PHONESTATUS_SIMULATOR_LATENCY_SCALE", "0")
    monkeypatch.setenv("PHONESTATUS_NUMBER_RATE_LIMIT", "off")
    monkeypatch.delenv("PHONESTATUS_DATABASE_URL", raising=False)
    return CliRunner()


def enabled_account(runner: CliRunner) -> str:
    created = runner.invoke(app, ["account", "create", "--name", "批量", "--verified", "--json"])
    assert created.exit_code == 0, created.output
    account_id = str(json.loads(created.stdout)["AccountId"])
    enabled = runner.invoke(app, ["feature", "enable", account_id, "--accept-agreement"])
    assert enabled.exit_code == 0, enabled.output
    return account_id


class TestBatchCli:
    def test_run_dry_run_prints_estimate(self, cli_env: CliRunner, tmp_path: Path) -> None:
        account_id = enabled_account(cli_env)
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        result = cli_env.invoke(
            app, ["batch", "run", str(path), "--account", account_id, "--dry-run", "--json"]
        )

        assert result.exit_code == 0, result.output
        estimate = json.loads(result.stdout)["Estimate"]
        assert estimate["DistinctNumbers"] == 2
        assert estimate["InvalidRows"] == 1
        assert estimate["Amount"] == "0.200"

    def test_run_writes_xlsx_and_show_lists_job(self, cli_env: CliRunner, tmp_path: Path) -> None:
        account_id = enabled_account(cli_env)
        path = write_numbers(tmp_path / "list.csv", NUMBERS)
        output = tmp_path / "out.xlsx"

        result = cli_env.invoke(
            app,
            ["batch", "run", str(path), "--account", account_id, "--output", str(output), "--json"],
        )

        assert result.exit_code == 0, result.output
        job = json.loads(result.stdout)["Job"]
        assert job["State"] == "completed"
        assert job["QueriedNumbers"] == 2
        workbook = openpyxl.load_workbook(output, read_only=True)
        assert workbook.sheetnames == ["汇总 Summary", "结果 Results"]
        workbook.close()
        shown = cli_env.invoke(app, ["batch", "show", job["JobId"], "--json"])
        assert json.loads(shown.stdout)["State"] == "completed"
        listed = cli_env.invoke(app, ["batch", "list", "--json"])
        assert [item["JobId"] for item in json.loads(listed.stdout)["Jobs"]] == [job["JobId"]]
        # Narrower than the table: the id and state share one unbroken line.
        narrow = cli_env.invoke(app, ["batch", "list"], env={"COLUMNS": "80"})
        assert f"{job['JobId']}  completed" in narrow.stdout.splitlines()

    def test_run_prints_progress_lines_when_logged(
        self, cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a terminal no bar is drawn, so progress comes as plain lines."""
        monkeypatch.setattr("phonestatus.commands.batch.PROGRESS_LINE_SECONDS", 0.0)
        account_id = enabled_account(cli_env)
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        result = cli_env.invoke(app, ["batch", "run", str(path), "--account", account_id])

        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if ": queried " in line]
        assert lines, result.stderr
        # Two distinct valid numbers: one repeats, one lost its digits.
        assert lines[-1].endswith("queried 2 of 2 numbers (completed)")

    def test_run_unknown_account_fails(self, cli_env: CliRunner, tmp_path: Path) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        result = cli_env.invoke(app, ["batch", "run", str(path), "--account", "acc_missing"])

        assert result.exit_code == 1
        assert "not found" in result.stderr

    def test_run_bad_output_name_fails(self, cli_env: CliRunner, tmp_path: Path) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        result = cli_env.invoke(
            app, ["batch", "run", str(path), "--account", "acc_x", "--output", "out.xls"]
        )

        assert result.exit_code == 1
        assert "out.xls" in result.stderr

    def test_cancel_unknown_job_fails(self, cli_env: CliRunner) -> None:
        result = cli_env.invoke(app, ["batch", "cancel", "job_missing"])

        assert result.exit_code == 1
        assert "not found" in result.stderr
