"""Operator commands: recharge, balance, package, bill and invoice.

Amounts on the command line are CNY with up to 3 decimals ("100", "0.035");
output shows CNY with exactly 3 decimals. Each command runs in one committed
transaction; billing errors become ``error: ...`` on stderr with exit code 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.billing.errors import BillingError
from phonestatus.billing.invoices import (
    issue_month_invoice,
    issue_package_invoice,
    list_invoices,
    void_invoice,
)
from phonestatus.billing.ledger import get_balance, recharge
from phonestatus.billing.models import Bill, BillLine, Invoice, Package, PackageType
from phonestatus.billing.money import format_cny, parse_cny
from phonestatus.billing.packages import (
    buy_package,
    list_package_types,
    list_packages,
    quota_summary,
    set_package_type,
)
from phonestatus.billing.payments import OfflinePaymentProvider
from phonestatus.billing.refunds import refund_package
from phonestatus.billing.settlement import settle_due_cycles, settlement_options
from phonestatus.billing.stats import monthly_estimate
from phonestatus.commands.common import build_runtime, fail, print_json, run_async, run_in_session
from phonestatus.runtime import Runtime

T = TypeVar("T")

package_app = typer.Typer(
    help="Package catalog, purchases and refunds (套餐包).", no_args_is_help=True
)
bill_app = typer.Typer(help="Billing cycles and bills.", no_args_is_help=True)
invoice_app = typer.Typer(help="Issue and void invoices.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def register(app: typer.Typer) -> None:
    app.command("recharge")(recharge_command)
    app.command("balance")(balance_command)
    app.add_typer(package_app, name="package")
    app.add_typer(bill_app, name="bill")
    app.add_typer(invoice_app, name="invoice")


# Plumbing -------------------------------------------------------------------


def _run(work: Callable[[Runtime, AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
    """Run ``work`` in one session and commit; writes hold the SQLite write lock from the start."""
    return run_in_session(work, immediate=write, handled=(BillingError, ValueError))


def _amount(text: str) -> int:
    try:
        return parse_cny(text)
    except BillingError as exc:
        fail(str(exc))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"invalid time {text!r}: expected ISO 8601, e.g. 2026-03-10T11:00:00Z")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _package_json(package: Package) -> dict[str, Any]:
    return {
        "PackageId": package.id,
        "AccountId": package.account_id,
        "Type": package.type_code,
        "Quota": package.quota,
        "Remaining": package.remaining,
        "Price": format_cny(package.price_li),
        "PaymentChannel": package.payment_channel,
        "PaymentReference": package.payment_reference,
        "PurchasedAt": _time(package.purchased_at),
        "ExpiresAt": _time(package.expires_at),
        "RefundedAt": _time(package.refunded_at),
        "RefundDestination": package.refund_destination,
    }


def _package_type_json(package_type: PackageType) -> dict[str, Any]:
    return {
        "Code": package_type.code,
        "Name": package_type.name,
        "Quota": package_type.quota,
        "Price": format_cny(package_type.price_li),
        "ValidityDays": package_type.validity_days,
        "Active": package_type.active,
    }


def _invoice_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "InvoiceId": invoice.id,
        "AccountId": invoice.account_id,
        "Kind": invoice.kind,
        "PackageId": invoice.package_id,
        "Month": invoice.period,
        "Amount": format_cny(invoice.amount_li),
        "IssuedAt": _time(invoice.issued_at),
        "VoidedAt": _time(invoice.voided_at),
    }


def _print_rows(rows: list[dict[str, Any]], columns: list[str]) -> None:
    typer.echo("\t".join(columns))
    for row in rows:
        typer.echo("\t".join("" if row[column] is None else str(row[column]) for column in columns))


# recharge and balance -------------------------------------------------------


def recharge_command(
    account_id: str = typer.Argument(..., help="Account to credit."),
    amount_cny: str = typer.Argument(..., help="Amount in CNY, up to 3 decimals, e.g. 100.5."),
    channel: str = typer.Option(
        "offline", help="How the money arrived: offline, alipay, wechat or bank_transfer."
    ),
    reference: str | None = typer.Option(
        None, help="Payment reference (required for alipay, wechat and bank_transfer)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Credit a payment to an account's prepaid balance; clears arrears when it covers them."""
    amount_li = _amount(amount_cny)

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        result = await recharge(
            session,
            account_id,
            amount_li,
            provider=OfflinePaymentProvider(),
            channel=channel,
            reference=reference,
            clock=runtime.clock,
        )
        return {
            "AccountId": account_id,
            "Amount": format_cny(result.entry.amount_li),
            "Channel": result.entry.channel,
            "Reference": result.entry.reference,
            "Balance": format_cny(result.balance_li),
            "Reactivated": result.reactivated,
        }

    payload = _run(work)
    if as_json:
        print_json(payload)
        return
    typer.echo(f"recharged {payload['Amount']} CNY; balance {payload['Balance']} CNY")
    if payload["Reactivated"]:
        typer.echo("arrears cleared; the account can query again")


def balance_command(
    account_id: str = typer.Argument(..., help="Account to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the balance, arrears state, package quota and this month's estimated cost."""

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        view = await get_balance(session, account_id)
        quota = await quota_summary(session, account_id, clock=runtime.clock)
        estimate = await monthly_estimate(session, account_id, clock=runtime.clock)
        return {
            "AccountId": account_id,
            "Balance": format_cny(view.balance_li),
            "InArrears": view.in_arrears,
            "ArrearsSince": _time(view.arrears_since),
            "State": view.state,
            "PackageRemaining": quota.remaining,
            "Month": estimate.period,
            "MonthBillableCount": estimate.billable_count,
            "MonthEstimatedCost": format_cny(estimate.estimated_li),
            "MonthBilled": format_cny(estimate.billed_li),
        }

    payload = _run(work, write=False)
    if as_json:
        print_json(payload)
        return
    typer.echo(f"balance: {payload['Balance']} CNY ({payload['State']})")
    if payload["InArrears"]:
        typer.echo(f"in arrears since {payload['ArrearsSince']}; queries are refused")
    typer.echo(f"package quota remaining: {payload['PackageRemaining']}")
    count = payload["MonthBillableCount"]
    typer.echo(
        f"{payload['Month']}: {count} billable {'query' if count == 1 else 'queries'}, "
        f"estimated {payload['MonthEstimatedCost']} CNY (the month-end bill is authoritative)"
    )


# package --------------------------------------------------------------------


@package_app.command("catalog")
def package_catalog(
    set_code: str | None = typer.Option(None, "--set", help="Create or change this package type."),
    name: str | None = typer.Option(None, help="Display name (with --set)."),
    quota: int | None = typer.Option(None, min=1, help="Billable queries included (with --set)."),
    price: str | None = typer.Option(None, help="Price in CNY (with --set)."),
    validity_days: int | None = typer.Option(None, min=1, help="Days until expiry (with --set)."),
    inactive: bool = typer.Option(False, "--inactive", help="Stop selling it (with --set)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the package catalog, or change one entry with --set."""
    if set_code is not None and (quota is None or price is None or validity_days is None):
        fail("--set needs --quota, --price and --validity-days")
    price_li = _amount(price) if price is not None else None

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        if set_code is not None:
            assert quota is not None
            assert price_li is not None
            assert validity_days is not None
            await set_package_type(
                session,
                set_code,
                name=name or f"{quota} status queries",
                quota=quota,
                price_li=price_li,
                validity_days=validity_days,
                active=not inactive,
            )
        types = await list_package_types(session, include_inactive=True)
        return [_package_type_json(package_type) for package_type in types]

    rows = _run(work, write=set_code is not None)
    if as_json:
        print_json({"PackageTypes": rows})
        return
    _print_rows(rows, ["Code", "Name", "Quota", "Price", "ValidityDays", "Active"])


@package_app.command("buy")
def package_buy(
    account_id: str = typer.Argument(..., help="Account that buys the package."),
    type_code: str = typer.Argument(..., help="Package type code from `package catalog`."),
    channel: str = typer.Option(
        "balance",
        help="balance (debit the prepaid balance), alipay, wechat, bank_transfer, offline.",
    ),
    reference: str | None = typer.Option(None, help="Payment reference of a third-party channel."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Buy a package; it takes effect at once."""

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        package = await buy_package(
            session,
            account_id,
            type_code,
            channel=channel,
            reference=reference,
            clock=runtime.clock,
        )
        return _package_json(package)

    payload = _run(work)
    if as_json:
        print_json(payload)
        return
    typer.echo(
        f"package {payload['PackageId']}: {payload['Quota']} queries until {payload['ExpiresAt']}"
    )


@package_app.command("list")
def package_list(
    account_id: str = typer.Argument(..., help="Account whose packages to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's packages with their remaining quota (余量)."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        return [_package_json(package) for package in await list_packages(session, account_id)]

    rows = _run(work, write=False)
    if as_json:
        print_json({"Packages": rows})
        return
    _print_rows(
        rows, ["PackageId", "Type", "Quota", "Remaining", "Price", "ExpiresAt", "RefundedAt"]
    )


@package_app.command("refund")
def package_refund(
    package_id: str = typer.Argument(..., help="Package to refund."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Refund an unused package bought within 6 months (void its invoice first)."""

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        result = await refund_package(session, package_id, clock=runtime.clock)
        return {
            "PackageId": package_id,
            "Amount": format_cny(result.amount_li),
            "Destination": result.destination.value,
            "Channel": result.channel,
            "PaymentReference": result.package.payment_reference,
        }

    payload = _run(work)
    if as_json:
        print_json(payload)
        return
    if payload["Destination"] == "balance":
        typer.echo(f"refunded {payload['Amount']} CNY to the account balance")
    else:
        typer.echo(
            f"refund of {payload['Amount']} CNY recorded to {payload['Channel']} "
            f"(payment {payload['PaymentReference']}); pay it back through that channel"
        )


# bill -----------------------------------------------------------------------


@bill_app.command("run")
def bill_run(
    until: str | None = typer.Option(
        None, help="Settle cycles that end by this ISO 8601 time (UTC if no offset); default now."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Settle finished billing cycles now, purge expired arrears and send notifications."""
    until_time = _parse_time(until) if until is not None else None
    runtime = build_runtime()

    async def main() -> dict[str, Any]:
        try:
            report = await settle_due_cycles(
                runtime.session_factory,
                clock=runtime.clock,
                until=until_time,
                **settlement_options(runtime.settings),
            )
        finally:
            await runtime.close()
        return {
            "Bills": len(report.bills),
            "Suspended": report.suspended,
            "Purged": report.purged,
            "Failed": report.failed_accounts,
            "NotificationsSent": report.notifications_sent,
        }

    payload = run_async(main)
    if as_json:
        print_json(payload)
    else:
        typer.echo(
            f"{payload['Bills']} bills, {len(payload['Suspended'])} accounts suspended, "
            f"{len(payload['Purged'])} purged, {payload['NotificationsSent']} notifications sent"
        )
    if payload["Failed"]:
        fail(f"settlement failed for accounts {', '.join(payload['Failed'])}; see the log")


@bill_app.command("list")
def bill_list(
    account_id: str = typer.Argument(..., help="Account whose bills to list."),
    limit: int = typer.Option(48, min=1, help="Most recent bills to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's most recent bills, with a line per action."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        bills = (
            await session.scalars(
                select(Bill)
                .where(Bill.account_id == account_id)
                .order_by(Bill.cycle_start.desc(), Bill.created_at.desc())
                .limit(limit)
            )
        ).all()
        rows = []
        for bill in bills:
            lines = (
                await session.scalars(
                    select(BillLine).where(BillLine.bill_id == bill.id).order_by(BillLine.action)
                )
            ).all()
            rows.append(
                {
                    "BillId": bill.id,
                    "CycleStart": _time(bill.cycle_start),
                    "CycleEnd": _time(bill.cycle_end),
                    "Queries": bill.query_count,
                    "Amount": format_cny(bill.amount_li),
                    "Charged": format_cny(bill.charged_li),
                    "Lines": [
                        {
                            "Action": line.action,
                            "Count": line.count,
                            "PackageCount": line.package_count,
                            "BalanceCount": line.balance_count,
                            "Amount": format_cny(line.amount_li),
                        }
                        for line in lines
                    ],
                }
            )
        return rows

    rows = _run(work, write=False)
    if as_json:
        print_json({"Bills": rows})
        return
    _print_rows(rows, ["BillId", "CycleStart", "Queries", "Amount", "Charged"])


# invoice --------------------------------------------------------------------


@invoice_app.command("issue")
def invoice_issue(
    package_id: str | None = typer.Option(None, "--package", help="Invoice this package."),
    account_id: str | None = typer.Option(None, "--account", help="Invoice this account's month."),
    month: str | None = typer.Option(None, help="Month to invoice, YYYY-MM (with --account)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue an invoice for a package (--package) or a finished month (--account --month)."""
    if (package_id is None) == (account_id is None):
        fail("give either --package PACKAGE_ID or --account ACCOUNT_ID --month YYYY-MM")
    if account_id is not None and month is None:
        fail("--account needs --month YYYY-MM")

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        if package_id is not None:
            invoice = await issue_package_invoice(session, package_id, clock=runtime.clock)
        else:
            assert account_id is not None
            assert month is not None
            invoice = await issue_month_invoice(session, account_id, month, clock=runtime.clock)
        return _invoice_json(invoice)

    payload = _run(work)
    if as_json:
        print_json(payload)
        return
    typer.echo(f"invoice {payload['InvoiceId']}: {payload['Amount']} CNY")


@invoice_app.command("void")
def invoice_void(
    invoice_id: str = typer.Argument(..., help="Invoice to void (退票)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Void an invoice, for example before refunding its package."""

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        return _invoice_json(await void_invoice(session, invoice_id, clock=runtime.clock))

    payload = _run(work)
    if as_json:
        print_json(payload)
        return
    typer.echo(f"invoice {payload['InvoiceId']} voided")


@invoice_app.command("list")
def invoice_list(
    account_id: str = typer.Argument(..., help="Account whose invoices to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's invoices."""

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        return [_invoice_json(invoice) for invoice in await list_invoices(session, account_id)]

    rows = _run(work, write=False)
    if as_json:
        print_json({"Invoices": rows})
        return
    _print_rows(rows, ["InvoiceId", "Kind", "PackageId", "Month", "Amount", "VoidedAt"])
