"""The account, feature, accesskey, authcode, user and quickstart commands via typer's runner."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner, Result

from phonestatus.cli import app
from phonestatus.commands import accounts as accounts_commands

runner = CliRunner()

ACCOUNT_ID_PATTERN = re.compile(r"acc_[0-9a-f]{16}")


def invoke(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def invoke_json(*args: str, input: str | None = None) -> dict[str, Any]:
    """Run a command that must succeed and print exactly one JSON object on stdout."""
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def create_account(*extra: str) -> str:
    payload = invoke_json("account", "create", "--name", "Acme", *extra)
    return str(payload["AccountId"])


def create_ready_account() -> str:
    account_id = create_account("--verified")
    assert invoke("feature", "enable", account_id, "--accept-agreement").exit_code == 0
    return account_id


@pytest.mark.usefixtures("cli_env")
class TestAccountCommands:
    def test_account_create_json_prints_id(self) -> None:
        payload = invoke_json("account", "create", "--name", "Acme", "--email", "a@example.com")

        assert list(payload) == ["AccountId"]
        assert ACCOUNT_ID_PATTERN.fullmatch(payload["AccountId"])

    def test_account_create_text(self) -> None:
        result = invoke("account", "create", "--name", "Acme")

        assert result.exit_code == 0
        assert re.fullmatch(r"created account acc_[0-9a-f]{16} \(pending\)\n", result.stdout)

    def test_account_create_without_name_is_usage_error(self) -> None:
        result = invoke("account", "create")

        assert result.exit_code == 2
        assert "--name" in result.stderr

    def test_account_show_json(self) -> None:
        account_id = create_account("--phone", "13800138000", "--verified")

        details = invoke_json("account", "show", account_id)

        assert details["AccountId"] == account_id
        assert details["Phone"] == "13800138000"
        assert details["VerificationState"] == "verified"
        assert details["State"] == "active"
        assert details["SuspendedAt"] is None
        assert details["RateLimit"] is None
        assert details["Features"] == []
        assert details["AccessKeys"] == []

    def test_account_show_text(self) -> None:
        account_id = create_account()

        result = invoke("account", "show", account_id)

        assert result.exit_code == 0
        assert f"AccountId:         {account_id}" in result.stdout
        assert "VerificationState: pending" in result.stdout

    def test_account_show_missing_names_id(self) -> None:
        result = invoke("account", "show", "acc_doesnotexist00")

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == "error: account 'acc_doesnotexist00' not found\n"

    def test_account_verify_approves(self) -> None:
        account_id = create_account()

        result = invoke("account", "verify", account_id, "--by", "reviewer")

        assert result.exit_code == 0
        assert result.stdout == f"account {account_id} is verified\n"
        details = invoke_json("account", "show", account_id)
        assert details["VerifiedBy"] == "reviewer"

    def test_account_verify_reject(self) -> None:
        account_id = create_account()

        result = invoke("account", "verify", account_id, "--reject")

        assert result.exit_code == 0
        assert invoke_json("account", "show", account_id)["VerificationState"] == "rejected"

    def test_account_rate_limit_set_and_cleared(self) -> None:
        account_id = create_account()

        result = invoke("account", "rate-limit", account_id, "1000/second")

        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"account {account_id} may query at 1000/second\n"
        assert invoke_json("account", "show", account_id)["RateLimit"] == "1000/second"
        cleared = invoke("account", "rate-limit", account_id, "--default")
        assert cleared.exit_code == 0, cleared.stderr
        assert invoke_json("account", "show", account_id)["RateLimit"] is None

    def test_account_rate_limit_invalid_named(self) -> None:
        account_id = create_account()

        result = invoke("account", "rate-limit", account_id, "fast")

        assert result.exit_code == 1
        assert "'fast'" in result.stderr
        assert "200/second" in result.stderr
        assert invoke_json("account", "show", account_id)["RateLimit"] is None

    def test_account_rate_limit_needs_one_choice(self) -> None:
        account_id = create_account()

        result = invoke("account", "rate-limit", account_id)

        assert result.exit_code == 1
        assert "--default" in result.stderr

    def test_account_verify_missing_names_id(self) -> None:
        result = invoke("account", "verify", "acc_doesnotexist00")

        assert result.exit_code == 1
        assert "acc_doesnotexist00" in result.stderr

    def test_account_create_database_error_is_one_line(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def rejected(*_: object, **__: object) -> None:
            raise IntegrityError("INSERT INTO accounts", {}, Exception("duplicate key"))

        monkeypatch.setattr(accounts_commands.service, "create_account", rejected)

        result = invoke("account", "create", "--name", "Acme", "--json")

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            "error: the database rejected the change, nothing was saved: duplicate key\n"
        )

    def test_account_list_invalid_setting_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PHONESTATUS_ENVIRONMENT", "prod")

        result = invoke("account", "list")

        assert result.exit_code == 1
        assert result.stderr.startswith("error: invalid PHONESTATUS_* setting")
        assert "environment" in result.stderr

    def test_account_list_includes_created(self) -> None:
        account_id = create_account()

        listed = invoke_json("account", "list")

        assert account_id in {item["AccountId"] for item in listed["Accounts"]}
        text = invoke("account", "list")
        assert account_id in text.stdout


@pytest.mark.usefixtures("cli_env")
class TestFeatureCommands:
    def test_feature_enable_records_agreement(self) -> None:
        account_id = create_account("--verified")

        payload = invoke_json("feature", "enable", account_id, "--accept-agreement", "--by", "ops")

        assert payload == {
            "AccountId": account_id,
            "Feature": "phone_status",
            "AgreementVersion": 1,
        }
        features = invoke_json("account", "show", account_id)["Features"]
        assert [(item["AgreementVersion"], item["AcceptedBy"]) for item in features] == [(1, "ops")]

    def test_feature_enable_without_acceptance_fails(self) -> None:
        account_id = create_account("--verified")

        result = invoke("feature", "enable", account_id)

        assert result.exit_code == 1
        assert "--accept-agreement" in result.stderr
        assert invoke_json("account", "show", account_id)["Features"] == []

    def test_feature_enable_unverified_fails(self) -> None:
        account_id = create_account()

        result = invoke("feature", "enable", account_id, "--accept-agreement")

        assert result.exit_code == 1
        assert "real-name verification" in result.stderr

    def test_feature_agreement_prints_english(self) -> None:
        result = invoke("feature", "agreement", "--lang", "en")

        assert result.exit_code == 0
        assert result.stdout.startswith("# Phone Number Status Query Service Agreement")

    def test_feature_agreement_unknown_locale_fails(self) -> None:
        result = invoke("feature", "agreement", "--lang", "fr")

        assert result.exit_code == 1
        assert "'fr'" in result.stderr


@pytest.mark.usefixtures("cli_env")
class TestAccessKeyCommands:
    def test_accesskey_create_json(self) -> None:
        account_id = create_account()

        payload = invoke_json("accesskey", "create", account_id)

        assert list(payload) == ["AccessKeyId", "AccessKeySecret"]
        assert re.fullmatch(r"LTAI[A-Za-z0-9]{20}", payload["AccessKeyId"])
        assert re.fullmatch(r"[A-Za-z0-9]{30}", payload["AccessKeySecret"])

    def test_accesskey_create_third_fails(self) -> None:
        account_id = create_account()
        invoke_json("accesskey", "create", account_id)
        invoke_json("accesskey", "create", account_id)

        result = invoke("accesskey", "create", account_id, "--json")

        assert result.exit_code == 1
        assert result.stdout == ""
        assert "already has 2 AccessKeys" in result.stderr

    def test_accesskey_create_missing_account_names_id(self) -> None:
        result = invoke("accesskey", "create", "acc_doesnotexist00")

        assert result.exit_code == 1
        assert "acc_doesnotexist00" in result.stderr

    def test_accesskey_list_never_shows_secret(self) -> None:
        account_id = create_account()
        created = invoke_json("accesskey", "create", account_id)

        listed = invoke_json("accesskey", "list", account_id)
        text = invoke("accesskey", "list", account_id)

        assert [item["AccessKeyId"] for item in listed["AccessKeys"]] == [created["AccessKeyId"]]
        assert created["AccessKeySecret"] not in json.dumps(listed)
        assert created["AccessKeySecret"] not in text.stdout
        assert created["AccessKeyId"] in text.stdout

    def test_accesskey_disable_and_enable(self) -> None:
        account_id = create_account()
        access_key_id = invoke_json("accesskey", "create", account_id)["AccessKeyId"]

        disabled = invoke("accesskey", "disable", access_key_id)
        after_disable = invoke_json("accesskey", "list", account_id)["AccessKeys"][0]["Enabled"]
        enabled = invoke("accesskey", "enable", access_key_id)
        after_enable = invoke_json("accesskey", "list", account_id)["AccessKeys"][0]["Enabled"]

        assert disabled.exit_code == 0
        assert enabled.exit_code == 0
        assert after_disable is False
        assert after_enable is True

    def test_accesskey_delete(self) -> None:
        account_id = create_account()
        access_key_id = invoke_json("accesskey", "create", account_id)["AccessKeyId"]

        result = invoke("accesskey", "delete", access_key_id)

        assert result.exit_code == 0
        assert invoke_json("accesskey", "list", account_id)["AccessKeys"] == []

    def test_accesskey_delete_missing_names_id(self) -> None:
        result = invoke("accesskey", "delete", "LTAIdoesnotexist")

        assert result.exit_code == 1
        assert result.stderr == "error: AccessKey 'LTAIdoesnotexist' not found\n"


@pytest.mark.usefixtures("cli_env")
class TestAuthCodeCommands:
    def test_authcode_create_for_all_actions(self) -> None:
        account_id = create_account()

        payload = invoke_json("authcode", "create", account_id)

        assert list(payload) == ["AuthCode"]
        listed = invoke_json("authcode", "list", account_id)["AuthCodes"]
        assert [(item["AuthCode"], item["Actions"]) for item in listed] == [
            (payload["AuthCode"], [])
        ]

    def test_authcode_create_with_actions(self) -> None:
        account_id = create_account()

        payload = invoke_json(
            "authcode",
            "create",
            account_id,
            "--action",
            "PhoneNumberStatusForSms",
            "--action",
            "PhoneNumberStatusForVoice",
        )

        listed = invoke_json("authcode", "list", account_id)["AuthCodes"]
        assert listed[0]["AuthCode"] == payload["AuthCode"]
        assert listed[0]["Actions"] == ["PhoneNumberStatusForSms", "PhoneNumberStatusForVoice"]

    def test_authcode_create_unknown_action_fails(self) -> None:
        account_id = create_account()

        result = invoke("authcode", "create", account_id, "--action", "SendSms")

        assert result.exit_code == 1
        assert "unknown action 'SendSms'" in result.stderr

    def test_authcode_revoke(self) -> None:
        account_id = create_account()
        code = invoke_json("authcode", "create", account_id)["AuthCode"]

        result = invoke("authcode", "revoke", code)

        assert result.exit_code == 0
        listed = invoke_json("authcode", "list", account_id)["AuthCodes"]
        assert listed[0]["Revoked"] is True

    def test_authcode_revoke_missing_fails(self) -> None:
        result = invoke("authcode", "revoke", "NoSuchCode00")

        assert result.exit_code == 1
        assert "NoSuchCode00" in result.stderr


@pytest.mark.usefixtures("cli_env")
class TestUserCommands:
    def test_user_create_reads_password_from_stdin(self) -> None:
        account_id = create_account()

        payload = invoke_json(
            "user",
            "create",
            account_id,
            "--username",
            f"alice-{account_id[-6:]}",
            "--password-stdin",
            input="correct horse battery\n",
        )

        assert payload["Username"] == f"alice-{account_id[-6:]}"
        assert payload["Operator"] is False
        assert payload["UserId"].startswith("usr_")

    def test_user_create_operator(self) -> None:
        username = f"root-{create_account()[-6:]}"

        payload = invoke_json(
            "user",
            "create",
            "--username",
            username,
            "--password-stdin",
            "--operator",
            input="correct horse battery\n",
        )

        assert payload["Operator"] is True

    def test_user_create_without_password_stdin_fails(self) -> None:
        account_id = create_account()

        result = invoke("user", "create", account_id, "--username", "bob-user")

        assert result.exit_code == 1
        assert "--password-stdin" in result.stderr

    def test_user_create_short_password_fails(self) -> None:
        account_id = create_account()

        result = invoke(
            "user",
            "create",
            account_id,
            "--username",
            f"carol-{account_id[-6:]}",
            "--password-stdin",
            input="short\n",
        )

        assert result.exit_code == 1
        assert result.stderr == "error: invalid password: must be at least 8 characters long\n"

    def test_user_create_operator_with_account_fails(self) -> None:
        account_id = create_account()

        result = invoke(
            "user",
            "create",
            account_id,
            "--username",
            f"dave-{account_id[-6:]}",
            "--password-stdin",
            "--operator",
            input="correct horse battery\n",
        )

        assert result.exit_code == 1
        assert "operator belongs to no account" in result.stderr

    def test_user_create_duplicate_fails(self) -> None:
        account_id = create_account()
        username = f"erin-{account_id[-6:]}"
        arguments = ("user", "create", account_id, "--username", username, "--password-stdin")
        invoke(*arguments, input="correct horse battery\n")

        result = invoke(*arguments, input="correct horse battery\n")

        assert result.exit_code == 1
        assert result.stderr == f"error: user '{username}' already exists\n"


@pytest.mark.usefixtures("fresh_cli_env")
class TestQuickstart:
    def test_quickstart_json_fields(self) -> None:
        payload = invoke_json("quickstart")

        # Fields after these five come from _quickstart_extras (billing adds Balance).
        assert list(payload)[:5] == [
            "AccountId",
            "AccessKeyId",
            "AccessKeySecret",
            "AuthCode",
            "Endpoint",
        ]
        assert payload["AccountId"] == accounts_commands.DEMO_ACCOUNT_ID
        assert payload["Endpoint"] == "http://127.0.0.1:8080"

    def test_quickstart_prepares_ready_account(self) -> None:
        payload = invoke_json("quickstart")

        details = invoke_json("account", "show", payload["AccountId"])

        assert details["VerificationState"] == "verified"
        assert [item["Feature"] for item in details["Features"]] == ["phone_status"]
        assert [item["AccessKeyId"] for item in details["AccessKeys"]] == [payload["AccessKeyId"]]
        live_codes = [item for item in details["AuthCodes"] if not item["Revoked"]]
        assert [(item["AuthCode"], item["Actions"]) for item in live_codes] == [
            (payload["AuthCode"], [])
        ]

    def test_quickstart_rerun_returns_same_credentials(self) -> None:
        first = invoke_json("quickstart")

        second = invoke_json("quickstart")

        assert second == first

    def test_quickstart_reenables_disabled_demo_key(self) -> None:
        first = invoke_json("quickstart")
        invoke("accesskey", "disable", first["AccessKeyId"])

        second = invoke_json("quickstart")

        assert second["AccessKeyId"] == first["AccessKeyId"]
        keys = invoke_json("accesskey", "list", first["AccountId"])["AccessKeys"]
        assert [item["Enabled"] for item in keys] == [True]

    def test_quickstart_replaces_revoked_auth_code(self) -> None:
        first = invoke_json("quickstart")
        invoke("authcode", "revoke", first["AuthCode"])

        second = invoke_json("quickstart")

        assert second["AuthCode"] != first["AuthCode"]
        assert second["AccessKeySecret"] == first["AccessKeySecret"]

    def test_quickstart_endpoint_follows_host_and_port(self) -> None:
        payload = invoke_json("quickstart", "--host", "127.0.0.1", "--port", "9090")

        assert payload["Endpoint"] == "http://127.0.0.1:9090"

    def test_quickstart_endpoint_remembered_without_options(self) -> None:
        assert invoke_json("quickstart")["Endpoint"] == "http://127.0.0.1:8080"
        invoke_json("quickstart", "--port", "18383")

        assert invoke_json("quickstart")["Endpoint"] == "http://127.0.0.1:18383"

    def test_quickstart_text_has_runnable_snippet(self) -> None:
        payload = invoke_json("quickstart")

        result = invoke("quickstart")

        assert result.exit_code == 0
        assert f"AccessKeySecret: {payload['AccessKeySecret']}" in result.stdout
        snippet = result.stdout.split(accounts_commands.SDK_SNIPPET_HEADING)[1]
        compile(snippet, "<quickstart snippet>", "exec")
        assert f'access_key_secret="{payload["AccessKeySecret"]}"' in snippet
        assert 'endpoint="127.0.0.1:8080"' in snippet

    def test_quickstart_extras_hook_adds_fields(self, monkeypatch: pytest.MonkeyPatch) -> None:
        async def extras(*_: object) -> dict[str, str]:
            return {"Balance": "100.000 CNY"}

        monkeypatch.setattr(accounts_commands, "_quickstart_extras", extras)

        payload = invoke_json("quickstart")
        text = invoke("quickstart")

        assert payload["Balance"] == "100.000 CNY"
        assert "Balance:         100.000 CNY" in text.stdout
