"""Operator commands: account, feature, accesskey, authcode, user and quickstart.

Each command opens one session, does its work through ``accounts.service``
and commits once. Service errors become ``error: ...`` on stderr with exit
code 1; ``--json`` output is exactly one JSON object on stdout.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts import service
from phonestatus.accounts.agreements import (
    AGREEMENT_LOCALES,
    CURRENT_AGREEMENT_VERSION,
    agreement_text,
)
from phonestatus.accounts.crypto import SecretCipher
from phonestatus.accounts.errors import AccessKeyNotFound, AccountsError
from phonestatus.accounts.models import AccessKey, Account, AuthCode
from phonestatus.clock import Clock
from phonestatus.commands.common import fail, print_json, run_in_session
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings

T = TypeVar("T")

# The demo account `quickstart` creates and reuses; a fixed id keeps re-runs idempotent.
DEMO_ACCOUNT_ID = "acc_0000000000000000"
DEMO_ACCOUNT_NAME = "Demo account"
QUICKSTART_ACTOR = "quickstart"

account_app = typer.Typer(help="Create, verify and inspect accounts.", no_args_is_help=True)
feature_app = typer.Typer(help="Enable features for an account.", no_args_is_help=True)
accesskey_app = typer.Typer(help="Manage AccessKeys (at most 2 per account).", no_args_is_help=True)
authcode_app = typer.Typer(help="Manage authorization codes (AuthCode).", no_args_is_help=True)
user_app = typer.Typer(help="Manage console users and operators.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
    app.add_typer(feature_app, name="feature")
    app.add_typer(accesskey_app, name="accesskey")
    app.add_typer(authcode_app, name="authcode")
    app.add_typer(user_app, name="user")
    app.command("quickstart")(quickstart)


# Plumbing -------------------------------------------------------------------


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _run(work: Callable[[Runtime, AsyncSession], Awaitable[T]], *, immediate: bool = False) -> T:
    """Run ``work`` in one committed session; map service errors to a clean exit."""
    return run_in_session(work, immediate=immediate, handled=(AccountsError, ValueError))


def _cipher(runtime: Runtime) -> SecretCipher:
    return SecretCipher(runtime.secret_key)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "AccountId": account.id,
        "Name": account.name,
        "Email": account.email,
        "Phone": account.phone,
        "VerificationState": account.verification_state.value,
        "VerifiedBy": account.verified_by,
        "VerifiedAt": _time(account.verified_at),
        "State": account.state.value,
        "SuspendedAt": _time(account.suspended_at),
        "RateLimit": account.rate_limit,
        "CreatedAt": _time(account.created_at),
    }


def _access_key_json(access_key: AccessKey) -> dict[str, Any]:
    return {
        "AccessKeyId": access_key.id,
        "AccountId": access_key.account_id,
        "Enabled": access_key.enabled,
        "CreatedAt": _time(access_key.created_at),
        "LastUsedAt": _time(access_key.last_used_at),
    }


def _auth_code_json(auth_code: AuthCode) -> dict[str, Any]:
    return {
        "AuthCode": auth_code.code,
        "AccountId": auth_code.account_id,
        "Actions": list(auth_code.actions),
        "Revoked": auth_code.is_revoked,
        "RevokedAt": _time(auth_code.revoked_at),
        "CreatedAt": _time(auth_code.created_at),
    }


# account --------------------------------------------------------------------


@account_app.command("create")
def account_create(
    name: str = typer.Option(..., "--name", help="Account (company) name."),
    email: str | None = typer.Option(None, "--email", help="Contact email."),
    phone: str | None = typer.Option(None, "--phone", help="Phone number for notifications."),
    verified: bool = typer.Option(
        False, "--verified", help="Mark real-name verification as passed."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an account."""

    async def work(runtime: Runtime, session: AsyncSession) -> Account:
        return await service.create_account(
            session,
            name=name,
            email=email,
            phone=phone,
            verified=verified,
            decided_by=_default_actor(),
            clock=runtime.clock,
        )

    account = _run(work)
    if as_json:
        print_json({"AccountId": account.id})
    else:
        typer.echo(f"created account {account.id} ({account.verification_state.value})")


@account_app.command("verify")
def account_verify(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    reject: bool = typer.Option(False, "--reject", help="Record a rejection instead."),
    decided_by: str | None = typer.Option(
        None, "--by", help="Who decided; defaults to the current OS user."
    ),
) -> None:
    """Record the real-name verification decision for an account."""

    async def work(runtime: Runtime, session: AsyncSession) -> Account:
        return await service.verify_account(
            session,
            account_id,
            decided_by=decided_by or _default_actor(),
            approve=not reject,
            clock=runtime.clock,
        )

    account = _run(work)
    typer.echo(f"account {account.id} is {account.verification_state.value}")


@account_app.command("rate-limit")
def account_rate_limit(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    limit: str | None = typer.Argument(
        None, help="Query rate in `limits` notation, e.g. 1000/second. Omit with --default."
    ),
    default: bool = typer.Option(
        False, "--default", help="Use the server default (PHONESTATUS_ACCOUNT_RATE_LIMIT)."
    ),
) -> None:
    """Set an account's query rate, which API calls and batch jobs share."""
    if (limit is None) == (not default):
        fail("give a LIMIT such as 1000/second, or --default, but not both")

    async def work(runtime: Runtime, session: AsyncSession) -> Account:
        return await service.set_rate_limit(session, account_id, None if default else limit)

    account = _run(work)
    rate = account.rate_limit or "the server default"
    typer.echo(f"account {account.id} may query at {rate}")


@account_app.command("list")
def account_list(as_json: bool = JSON_OPTION) -> None:
    """List all accounts."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[Account]:
        return await service.list_accounts(session)

    accounts = _run(work)
    if as_json:
        print_json({"Accounts": [_account_json(account) for account in accounts]})
        return
    for account in accounts:
        typer.echo(
            f"{account.id}  {account.verification_state.value:<9}  "
            f"{account.state.value:<9}  {account.name}"
        )


@account_app.command("show")
def account_show(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show an account with its features, AccessKeys and AuthCodes (never secrets)."""

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        account = await service.get_account(session, account_id)
        activations = await service.list_feature_activations(session, account_id)
        access_keys = await service.list_access_keys(session, account_id)
        auth_codes = await service.list_auth_code_records(session, account_id)
        details = _account_json(account)
        details["Features"] = [
            {
                "Feature": activation.feature,
                "AgreementVersion": activation.agreement_version,
                "AcceptedBy": activation.accepted_by,
                "AcceptedAt": _time(activation.accepted_at),
            }
            for activation in activations
        ]
        details["AccessKeys"] = [_access_key_json(access_key) for access_key in access_keys]
        details["AuthCodes"] = [_auth_code_json(auth_code) for auth_code in auth_codes]
        return details

    details = _run(work)
    if as_json:
        print_json(details)
        return
    for key in ("AccountId", "Name", "Email", "Phone", "VerificationState", "VerifiedBy"):
        typer.echo(f"{key + ':':<19}{details[key] or '-'}")
    typer.echo(f"{'State:':<19}{details['State']}")
    typer.echo(f"{'CreatedAt:':<19}{details['CreatedAt']}")
    features = [
        f"{item['Feature']} (agreement v{item['AgreementVersion']})" for item in details["Features"]
    ]
    typer.echo(f"{'Features:':<19}{', '.join(features) or '-'}")
    for item in details["AccessKeys"]:
        state = "enabled" if item["Enabled"] else "disabled"
        typer.echo(f"{'AccessKey:':<19}{item['AccessKeyId']} ({state})")
    for item in details["AuthCodes"]:
        state = "revoked" if item["Revoked"] else "active"
        typer.echo(f"{'AuthCode:':<19}{item['AuthCode']} ({state})")


# feature --------------------------------------------------------------------


@feature_app.command("enable")
def feature_enable(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    accept_agreement: bool = typer.Option(
        False,
        "--accept-agreement",
        help="Accept the current service agreement (read it with `phonestatus feature agreement`).",
    ),
    accepted_by: str | None = typer.Option(
        None, "--by", help="Who accepted; defaults to the current OS user."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Enable phone number status queries (号码状态查询) for an account."""
    if not accept_agreement:
        fail(
            "enabling the feature requires accepting the service agreement; read it with "
            "`phonestatus feature agreement` and pass --accept-agreement"
        )

    async def work(runtime: Runtime, session: AsyncSession) -> int:
        activation = await service.enable_feature(
            session,
            account_id,
            accepted_by=accepted_by or _default_actor(),
            clock=runtime.clock,
        )
        return activation.agreement_version

    version = _run(work)
    if as_json:
        print_json(
            {
                "AccountId": account_id,
                "Feature": service.PHONE_STATUS_FEATURE,
                "AgreementVersion": version,
            }
        )
    else:
        typer.echo(
            f"feature {service.PHONE_STATUS_FEATURE} enabled for account {account_id} "
            f"(agreement v{version})"
        )


@feature_app.command("agreement")
def feature_agreement(
    lang: str = typer.Option("zh-CN", "--lang", help=f"One of {', '.join(AGREEMENT_LOCALES)}."),
    version: int = typer.Option(
        CURRENT_AGREEMENT_VERSION, "--version", help="Agreement version to print."
    ),
) -> None:
    """Print the service agreement (服务协议) an account accepts to enable the feature."""
    try:
        text = agreement_text(version, locale=lang)
    except LookupError as exc:
        fail(str(exc))
    typer.echo(text, nl=not text.endswith("\n"))


# accesskey ------------------------------------------------------------------


@accesskey_app.command("create")
def accesskey_create(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an AccessKey; its secret is shown only this once."""

    async def work(runtime: Runtime, session: AsyncSession) -> tuple[str, str]:
        access_key, secret = await service.create_access_key(
            session, account_id, cipher=_cipher(runtime), clock=runtime.clock
        )
        return access_key.id, secret

    access_key_id, secret = _run(work, immediate=True)
    if as_json:
        print_json({"AccessKeyId": access_key_id, "AccessKeySecret": secret})
        return
    typer.echo(f"AccessKeyId:     {access_key_id}")
    typer.echo(f"AccessKeySecret: {secret}")
    typer.echo("The secret is shown only now; store it safely.", err=True)


def _set_enabled(access_key_id: str, enabled: bool) -> None:
    async def work(runtime: Runtime, session: AsyncSession) -> None:
        await service.set_access_key_enabled(session, access_key_id, enabled)

    _run(work)
    typer.echo(f"AccessKey {access_key_id} {'enabled' if enabled else 'disabled'}")


@accesskey_app.command("disable")
def accesskey_disable(
    access_key_id: str = typer.Argument(..., help="AccessKeyId (LTAI...)."),
) -> None:
    """Disable an AccessKey; requests signed with it are rejected."""
    _set_enabled(access_key_id, False)


@accesskey_app.command("enable")
def accesskey_enable(
    access_key_id: str = typer.Argument(..., help="AccessKeyId (LTAI...)."),
) -> None:
    """Enable a disabled AccessKey."""
    _set_enabled(access_key_id, True)


@accesskey_app.command("delete")
def accesskey_delete(
    access_key_id: str = typer.Argument(..., help="AccessKeyId (LTAI...)."),
) -> None:
    """Delete an AccessKey for good."""

    async def work(runtime: Runtime, session: AsyncSession) -> None:
        await service.delete_access_key(session, access_key_id)

    _run(work)
    typer.echo(f"AccessKey {access_key_id} deleted")


@accesskey_app.command("list")
def accesskey_list(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's AccessKeys (ids and state, never secrets)."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[AccessKey]:
        await service.get_account(session, account_id)
        return await service.list_access_keys(session, account_id)

    access_keys = _run(work)
    if as_json:
        print_json({"AccessKeys": [_access_key_json(access_key) for access_key in access_keys]})
        return
    for access_key in access_keys:
        state = "enabled" if access_key.enabled else "disabled"
        last_used = _time(access_key.last_used_at) or "never used"
        typer.echo(f"{access_key.id}  {state:<8}  {_time(access_key.created_at)}  {last_used}")


# authcode -------------------------------------------------------------------


@authcode_app.command("create")
def authcode_create(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    actions: list[str] = typer.Option(
        [],
        "--action",
        help="Action the code is valid for; repeat for several. "
        "None: every status and attribution action.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue an authorization code (AuthCode) to an account."""

    async def work(runtime: Runtime, session: AsyncSession) -> AuthCode:
        return await service.create_auth_code(
            session, account_id, actions=actions, clock=runtime.clock
        )

    auth_code = _run(work)
    if as_json:
        print_json({"AuthCode": auth_code.code})
        return
    scope = ", ".join(auth_code.actions) or "every status and attribution action"
    typer.echo(f"AuthCode {auth_code.code} for {scope}")


@authcode_app.command("list")
def authcode_list(
    account_id: str = typer.Argument(..., help="Account id (acc_...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's AuthCodes, revoked ones included."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[AuthCode]:
        await service.get_account(session, account_id)
        return await service.list_auth_code_records(session, account_id)

    auth_codes = _run(work)
    if as_json:
        print_json({"AuthCodes": [_auth_code_json(auth_code) for auth_code in auth_codes]})
        return
    for auth_code in auth_codes:
        state = "revoked" if auth_code.is_revoked else "active"
        scope = ",".join(auth_code.actions) or "all"
        typer.echo(f"{auth_code.code}  {state:<7}  {scope}")


@authcode_app.command("revoke")
def authcode_revoke(code: str = typer.Argument(..., help="The AuthCode to revoke.")) -> None:
    """Revoke an AuthCode; requests carrying it are rejected."""

    async def work(runtime: Runtime, session: AsyncSession) -> None:
        await service.revoke_auth_code(session, code, clock=runtime.clock)

    _run(work)
    typer.echo(f"AuthCode {code} revoked")


# user -----------------------------------------------------------------------


@user_app.command("create")
def user_create(
    account_id: str | None = typer.Argument(
        None, help="Account the user belongs to; omit with --operator."
    ),
    username: str = typer.Option(..., "--username", help="Sign-in name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    operator: bool = typer.Option(
        False, "--operator", help="Create an operator (administrator), who belongs to no account."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a console user; the password is read from stdin, never from arguments."""
    if not password_stdin:
        fail("pass --password-stdin and write the password to standard input")
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(runtime: Runtime, session: AsyncSession) -> str:
        user = await service.create_user(
            session,
            account_id,
            username=username,
            password=password,
            is_operator=operator,
            clock=runtime.clock,
        )
        return user.id

    user_id = _run(work)
    if as_json:
        print_json({"UserId": user_id, "Username": username, "Operator": operator})
    else:
        role = "operator" if operator else f"user of account {account_id}"
        typer.echo(f"created {role} {username} ({user_id})")


# quickstart -----------------------------------------------------------------


async def _quickstart_extras(
    session: AsyncSession, account: Account, clock: Clock
) -> dict[str, str]:
    """Credit the demo account's starting balance (once) and return it for display.

    Returns extra facts as ``{"Label": "value"}``. They are added to the
    ``--json`` object after the account fields and printed in the text output.
    """
    from phonestatus.billing.ledger import DEMO_STARTING_BALANCE_LI, grant_demo_balance
    from phonestatus.billing.money import format_cny

    balance = await grant_demo_balance(session, account.id, DEMO_STARTING_BALANCE_LI, clock=clock)
    return {"Balance": format_cny(balance)}


def _endpoint(host: str | None, port: int | None) -> tuple[str, int]:
    """Return the endpoint to print; remember one given on the command line.

    ``make run PORT=...`` passes the port once, so a later plain
    ``phonestatus quickstart`` should print the same endpoint, not the default.
    """
    saved = Settings().data_dir / ENDPOINT_FILE
    if host is None and port is None:
        try:
            saved_host, _, saved_port = saved.read_text(encoding="utf-8").strip().rpartition(":")
            return saved_host or DEFAULT_HOST, int(saved_port)
        except (OSError, ValueError):
            return DEFAULT_HOST, DEFAULT_PORT
    host, port = host or DEFAULT_HOST, port or DEFAULT_PORT
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(f"{host}:{port}\n", encoding="utf-8")
    except OSError:
        pass  # Only a convenience for the next call; the endpoint is printed anyway.
    return host, port


async def _prepare_demo(
    runtime: Runtime, session: AsyncSession
) -> tuple[Account, str, str, str, dict[str, str]]:
    clock = runtime.clock
    cipher = _cipher(runtime)

    account = await service.find_account(session, DEMO_ACCOUNT_ID)
    if account is None:
        account = await service.create_account(
            session,
            name=DEMO_ACCOUNT_NAME,
            verified=True,
            decided_by=QUICKSTART_ACTOR,
            account_id=DEMO_ACCOUNT_ID,
            clock=clock,
        )
    elif not account.is_verified:
        await service.verify_account(session, account.id, decided_by=QUICKSTART_ACTOR, clock=clock)
    if not await service.is_feature_enabled(session, account.id):
        await service.enable_feature(session, account.id, accepted_by=QUICKSTART_ACTOR, clock=clock)

    # The demo key is the operator's own, so a re-run decrypts and shows it
    # again instead of creating keys until the limit of two is reached.
    access_keys = await service.list_access_keys(session, account.id)
    enabled = [access_key for access_key in access_keys if access_key.enabled]
    if enabled:
        access_key_id = enabled[0].id
    elif access_keys:
        access_key_id = access_keys[0].id
        await service.set_access_key_enabled(session, access_key_id, True)
    else:
        created, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        access_key_id = created.id
    resolved = await service.resolve_access_key(session, access_key_id, cipher=cipher)
    if resolved is None:
        raise AccessKeyNotFound(access_key_id)

    codes = await service.list_auth_code_records(session, account.id)
    universal = [code for code in codes if not code.is_revoked and not code.actions]
    if universal:
        auth_code = universal[0].code
    else:
        auth_code = (await service.create_auth_code(session, account.id, clock=clock)).code

    extras = await _quickstart_extras(session, account, clock)
    return account, access_key_id, resolved.secret, auth_code, extras


def sdk_snippet(*, access_key_id: str, secret: str, auth_code: str, host: str, port: int) -> str:
    """Return a Python snippet that queries the service with the official SDK."""
    return f"""\
from alibabacloud_dytnsapi20200217 import models
from alibabacloud_dytnsapi20200217.client import Client
from alibabacloud_tea_openapi.models import Config

client = Client(Config(
    access_key_id="{access_key_id}",
    access_key_secret="{secret}",
    endpoint="{host}:{port}",
    protocol="http",
))
response = client.phone_number_status_for_real(models.PhoneNumberStatusForRealRequest(
    auth_code="{auth_code}", input_number="13800138000", mask="NORMAL",
))
print(response.body.code, response.body.data.status, response.body.data.carrier)
"""


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# File in the data dir with the endpoint quickstart was last given.
ENDPOINT_FILE = "quickstart-endpoint"

# `make run` installs the SDK into .venv; the system Python may not have it.
SDK_SNIPPET_HEADING = (
    "Python SDK: run with .venv/bin/python, where make run installed it "
    "(elsewhere: pip install alibabacloud_dytnsapi20200217):"
)


def quickstart(
    host: str | None = typer.Option(
        None,
        help="Address the service listens on, for the endpoint "
        f"(default: the last one given, else {DEFAULT_HOST}).",
    ),
    port: int | None = typer.Option(
        None,
        help="Port the service listens on, for the endpoint "
        f"(default: the last one given, else {DEFAULT_PORT}).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create (or reuse) a ready demo account and print how to call the API with it."""
    host, port = _endpoint(host, port)
    account, access_key_id, secret, auth_code, extras = _run(_prepare_demo, immediate=True)
    endpoint = f"http://{host}:{port}"

    if as_json:
        print_json(
            {
                "AccountId": account.id,
                "AccessKeyId": access_key_id,
                "AccessKeySecret": secret,
                "AuthCode": auth_code,
                "Endpoint": endpoint,
                **extras,
            }
        )
        return
    typer.echo(f"Demo account ready: verified, {service.PHONE_STATUS_FEATURE} enabled.")
    typer.echo(f"  Endpoint:        {endpoint}")
    typer.echo(f"  AccountId:       {account.id}")
    typer.echo(f"  AccessKeyId:     {access_key_id}")
    typer.echo(f"  AccessKeySecret: {secret}")
    typer.echo(f"  AuthCode:        {auth_code}")
    for label, value in extras.items():
        typer.echo(f"  {label + ':':<17}{value}")
    typer.echo("")
    typer.echo(SDK_SNIPPET_HEADING)
    typer.echo("")
    typer.echo(
        sdk_snippet(
            access_key_id=access_key_id, secret=secret, auth_code=auth_code, host=host, port=port
        )
    )
