"""Billing errors, one hierarchy.

    BillingError
    ├── InvalidAmount(value, reason)
    ├── InvalidPrice(action, value)
    ├── InsufficientBalance(balance_li, requested_li)
    ├── PackageTypeNotFound(code)
    ├── PackageNotFound(package_id)
    ├── RefundRefused(package_id, reason)
    ├── InvoiceNotFound(invoice_id)
    ├── InvoiceRefused(reason)
    ├── BillingAccountNotFound(account_id)
    ├── AccountPurged(account_id)
    └── QueryAlreadyRecorded(request_id)

Every error carries the values it names, so callers (the gateway's error
table, the CLI, the console) can render their own message.
"""

from __future__ import annotations

from enum import StrEnum


def _cny(li: int) -> str:
    # money.format_cny, repeated here because money.py imports this module.
    sign = "-" if li < 0 else ""
    whole, fraction = divmod(abs(li), 1000)
    return f"{sign}{whole}.{fraction:03d}"


class BillingError(Exception):
    """Base class of every billing error."""


class InvalidAmount(BillingError, ValueError):
    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"invalid amount {value!r}: {reason}")


class InvalidPrice(BillingError, ValueError):
    def __init__(self, action: str, value: object) -> None:
        self.action = action
        self.value = value
        super().__init__(
            f"invalid unit price {value!r} for action {action!r}: expected CNY with up to 3 decimals"
        )


class InsufficientBalance(BillingError):
    def __init__(self, balance_li: int, requested_li: int) -> None:
        self.balance_li = balance_li
        self.requested_li = requested_li
        super().__init__(
            f"insufficient balance: {_cny(balance_li)} CNY available, "
            f"{_cny(requested_li)} CNY requested; recharge first"
        )


class PackageTypeNotFound(BillingError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"package type {code!r} not found; see `phonestatus package catalog`")


class PackageNotFound(BillingError):
    def __init__(self, package_id: str) -> None:
        self.package_id = package_id
        super().__init__(f"package {package_id!r} not found")


class RefundRefusal(StrEnum):
    """Reason a package cannot be refunded."""

    ALREADY_REFUNDED = "already_refunded"
    USED = "used"
    TOO_OLD = "older_than_6_months"
    INVOICE_ISSUED = "invoice_issued"


_REFUSAL_TEXT = {
    RefundRefusal.ALREADY_REFUNDED: "the package was already refunded",
    RefundRefusal.USED: "the package has been used",
    RefundRefusal.TOO_OLD: "the package was bought more than 6 months ago",
    RefundRefusal.INVOICE_ISSUED: "an invoice was issued for the package; void it first",
}


class RefundRefused(BillingError):
    def __init__(self, package_id: str, reason: RefundRefusal) -> None:
        self.package_id = package_id
        self.reason = reason
        super().__init__(f"package {package_id!r} cannot be refunded: {_REFUSAL_TEXT[reason]}")


class InvoiceNotFound(BillingError):
    def __init__(self, invoice_id: str) -> None:
        self.invoice_id = invoice_id
        super().__init__(f"invoice {invoice_id!r} not found")


class InvoiceRefused(BillingError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invoice refused: {reason}")


class BillingAccountNotFound(BillingError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} not found")


class AccountPurged(BillingError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} was purged after unpaid arrears")


class QueryAlreadyRecorded(BillingError):
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"a query with request id {request_id!r} is already recorded")
