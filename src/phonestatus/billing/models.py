"""Billing tables (migration 0002_billing).

Money columns end in ``_li`` and hold integer 0.001 CNY. Timestamps are aware
UTC. The ledger is append-only: an account's balance is the sum of its
``billing_ledger_entries.amount_li``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from phonestatus.storage.db import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY, so the 64-bit ids of the
# high-volume tables use that type there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ACCOUNT_FK = "accounts.id"


def new_id(prefix: str) -> str:
    """Return a random, URL-safe id such as ``pkg_3f9a0c1d2e4b5a6f``."""
    return f"{prefix}_{secrets.token_hex(8)}"


class QuerySource(StrEnum):
    API = "api"
    CONSOLE = "console"
    BATCH = "batch"


class LedgerKind(StrEnum):
    RECHARGE = "recharge"
    BILL = "bill"
    PACKAGE_PURCHASE = "package_purchase"
    REFUND = "refund"


class PaymentChannel(StrEnum):
    """Source of a payment. ``balance`` means the account's prepaid balance."""

    BALANCE = "balance"
    OFFLINE = "offline"
    ALIPAY = "alipay"
    WECHAT = "wechat"
    BANK_TRANSFER = "bank_transfer"


class RefundDestination(StrEnum):
    BALANCE = "balance"
    ORIGINAL_CHANNEL = "original_channel"


class InvoiceKind(StrEnum):
    PACKAGE = "package"
    MONTH = "month"


class BillingAccount(Base):
    """Billing state per account; its row is also the per-account lock (see ``ledger.lock_account``)."""

    __tablename__ = "billing_accounts"

    account_id: Mapped[str] = mapped_column(
        String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"), primary_key=True
    )
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    arrears_since: Mapped[datetime | None] = mapped_column(default=None)
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class QueryRecord(Base):
    """One completed query. Never contains the full number."""

    __tablename__ = "billing_query_records"
    __table_args__ = (Index("ix_billing_query_records_account_time", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    action: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    billable: Mapped[bool] = mapped_column(Boolean)
    masked_number: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(32))
    connector: Mapped[str | None] = mapped_column(String(32))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]


class UsageEvent(Base):
    """The charge of one billable query: package quota (``package_id`` set, price 0) or balance."""

    __tablename__ = "billing_usage_events"
    __table_args__ = (
        Index("ix_billing_usage_events_account_time", "account_id", "occurred_at"),
        Index("ix_billing_usage_events_unbilled", "bill_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    query_record_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    account_id: Mapped[str] = mapped_column(String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    package_id: Mapped[str | None] = mapped_column(String(32))
    unit_price_li: Mapped[int] = mapped_column(BigInteger)
    bill_id: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime]


class LedgerEntry(Base):
    """An append-only balance movement: positive credits, negative debits."""

    __tablename__ = "billing_ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    amount_li: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128))
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class PackageType(Base):
    """A package in the catalog (套餐包): quota of billable queries, price, validity."""

    __tablename__ = "billing_package_types"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    quota: Mapped[int] = mapped_column(BigInteger)
    price_li: Mapped[int] = mapped_column(BigInteger)
    validity_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Package(Base):
    """A bought package: effective on purchase, lapsed at ``expires_at``."""

    __tablename__ = "billing_packages"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("remaining <= quota", name="remaining_within_quota"),
        Index("ix_billing_packages_account_expiry", "account_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"))
    type_code: Mapped[str] = mapped_column(String(32))
    quota: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    price_li: Mapped[int] = mapped_column(BigInteger)
    payment_channel: Mapped[str] = mapped_column(String(32))
    payment_reference: Mapped[str | None] = mapped_column(String(128))
    purchased_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)
    refund_destination: Mapped[str | None] = mapped_column(String(32), default=None)

    @property
    def used(self) -> int:
        return self.quota - self.remaining


class Bill(Base):
    """The charge of one account for one billing cycle."""

    __tablename__ = "billing_bills"
    __table_args__ = (Index("ix_billing_bills_account_cycle", "account_id", "cycle_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"))
    cycle_start: Mapped[datetime]
    cycle_end: Mapped[datetime]
    query_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Exact sum of the lines, before the one rounding to whole fen.
    amount_li: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the ledger was debited: amount_li rounded half-up to 0.01 CNY.
    charged_li: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]


class BillLine(Base):
    __tablename__ = "billing_bill_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bill_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("billing_bills.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)
    package_count: Mapped[int] = mapped_column(BigInteger)
    balance_count: Mapped[int] = mapped_column(BigInteger)
    amount_li: Mapped[int] = mapped_column(BigInteger)


class Invoice(Base):
    """An invoice for a package or for one month's bills; voided instead of deleted."""

    __tablename__ = "billing_invoices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    package_id: Mapped[str | None] = mapped_column(String(32), index=True)
    period: Mapped[str | None] = mapped_column(String(7))
    amount_li: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime]
    voided_at: Mapped[datetime | None] = mapped_column(default=None)


class Notification(Base):
    """A message to an account's contacts; ``dedupe_key`` makes each event notify at most once."""

    __tablename__ = "billing_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(20), ForeignKey(ACCOUNT_FK, ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
