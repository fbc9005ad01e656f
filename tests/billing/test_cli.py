from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phonestatus.cli import app

DEMO = "acc_0000000000000000"


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_env(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_database_url: Callable[[str], str]
) -> dict[str, str]:
    return {
        "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
        "PHONESTATUS_DATABASE_URL": fresh_database_url(str(request.param)),
        "PHONESTATUS_SECRET_KEY": "x" * 40,
        "PHONESTATUS_NOTIFY_WEBHOOK_URL": "",
    }


def _invoke(env: dict[str, str], *args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.splitlines()[-1]))


def _fail(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 1, result.output
    return result.stderr


class TestBillingCommands:
    def test_quickstart_gives_demo_balance_once(self, cli_env: dict[str, str]) -> None:
        first = _invoke(cli_env, "quickstart")
        second = _invoke(cli_env, "quickstart")

        balance = _invoke(cli_env, "balance", DEMO)

        assert first["Balance"] == "100.000"
        assert second["Balance"] == "100.000"
        assert balance["Balance"] == "100.000"
        assert balance["InArrears"] is False

    def test_recharge_adds_exact_amount(self, cli_env: dict[str, str]) -> None:
        _invoke(cli_env, "quickstart")

        result = _invoke(
            cli_env, "recharge", DEMO, "0.035", "--channel", "alipay", "--reference", "T1"
        )

        assert result["Balance"] == "100.035"
        assert result["Channel"] == "alipay"

    def test_recharge_four_decimals_fails(self, cli_env: dict[str, str]) -> None:
        _invoke(cli_env, "quickstart")

        message = _fail(cli_env, "recharge", DEMO, "1.0001")

        assert "at most 3 decimals" in message

    def test_package_buy_invoice_void_refund(self, cli_env: dict[str, str]) -> None:
        _invoke(cli_env, "quickstart")
        _invoke(
            cli_env,
            "package",
            "catalog",
            "--set",
            "tiny",
            "--quota",
            "10",
            "--price",
            "0.9",
            "--validity-days",
            "30",
        )
        package = _invoke(cli_env, "package", "buy", DEMO, "tiny")
        invoice = _invoke(cli_env, "invoice", "issue", "--package", str(package["PackageId"]))

        refused = _fail(cli_env, "package", "refund", str(package["PackageId"]))
        _invoke(cli_env, "invoice", "void", str(invoice["InvoiceId"]))
        refund = _invoke(cli_env, "package", "refund", str(package["PackageId"]))
        balance = _invoke(cli_env, "balance", DEMO)

        assert "void it first" in refused
        assert refund["Destination"] == "balance"
        assert balance["Balance"] == "100.000"

    def test_bill_run_and_list_without_usage(self, cli_env: dict[str, str]) -> None:
        _invoke(cli_env, "quickstart")

        report = _invoke(cli_env, "bill", "run", "--until", "2026-03-10T11:00:00Z")
        bills = _invoke(cli_env, "bill", "list", DEMO)

        assert report["Bills"] == 0
        assert bills["Bills"] == []

    def test_balance_unknown_account_fails(self, cli_env: dict[str, str]) -> None:
        _invoke(cli_env, "quickstart")

        message = _fail(cli_env, "balance", "acc_ffffffffffffffff")

        assert "not found" in message
