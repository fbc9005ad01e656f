"""Billing: query records, usage, ledger, packages, bills, invoices, notifications.

Revision ID: 0002_billing
Revises: 0001_accounts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from phonestatus.storage.db import UTCDateTime

revision: str = "0002_billing"
down_revision: str | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Default catalog; operators change it with `phonestatus package catalog --set`.
DEFAULT_PACKAGE_TYPES = [
    {"code": "status-10k", "name": "10,000 status queries", "quota": 10_000, "price_li": 900_000},
    {
        "code": "status-100k",
        "name": "100,000 status queries",
        "quota": 100_000,
        "price_li": 8_000_000,
    },
    {
        "code": "status-1m",
        "name": "1,000,000 status queries",
        "quota": 1_000_000,
        "price_li": 70_000_000,
    },
]


def _account_id(table: str) -> sa.Column[str]:
    # Constraint names follow storage.db.NAMING_CONVENTION, so both databases agree.
    return sa.Column(
        "account_id",
        sa.String(20),
        sa.ForeignKey("accounts.id", name=f"fk_{table}_account_id_accounts", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column(
            "account_id",
            sa.String(20),
            sa.ForeignKey(
                "accounts.id", name="fk_billing_accounts_account_id_accounts", ondelete="CASCADE"
            ),
            primary_key=True,
        ),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("arrears_since", UTCDateTime(), nullable=True),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "billing_query_records",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _account_id("billing_query_records"),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.UniqueConstraint("request_id", name="uq_billing_query_records_request_id"),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("masked_number", sa.String(64), nullable=True),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("connector", sa.String(32), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_billing_query_records_account_time",
        "billing_query_records",
        ["account_id", "occurred_at"],
    )
    op.create_table(
        "billing_usage_events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("query_record_id", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("query_record_id", name="uq_billing_usage_events_query_record_id"),
        _account_id("billing_usage_events"),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("package_id", sa.String(32), nullable=True),
        sa.Column("unit_price_li", sa.BigInteger(), nullable=False),
        sa.Column("bill_id", sa.String(32), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_billing_usage_events_account_time",
        "billing_usage_events",
        ["account_id", "occurred_at"],
    )
    op.create_index(
        "ix_billing_usage_events_unbilled", "billing_usage_events", ["bill_id", "occurred_at"]
    )
    op.create_table(
        "billing_ledger_entries",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _account_id("billing_ledger_entries"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount_li", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_billing_ledger_entries_account_id", "billing_ledger_entries", ["account_id"]
    )
    package_types = op.create_table(
        "billing_package_types",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("price_li", sa.BigInteger(), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.bulk_insert(
        package_types,
        [{**row, "validity_days": 365, "active": True} for row in DEFAULT_PACKAGE_TYPES],
    )
    op.create_table(
        "billing_packages",
        sa.Column("id", sa.String(32), primary_key=True),
        _account_id("billing_packages"),
        sa.Column("type_code", sa.String(32), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("price_li", sa.BigInteger(), nullable=False),
        sa.Column("payment_channel", sa.String(32), nullable=False),
        sa.Column("payment_reference", sa.String(128), nullable=True),
        sa.Column("purchased_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("refunded_at", UTCDateTime(), nullable=True),
        sa.Column("refund_destination", sa.String(32), nullable=True),
        sa.CheckConstraint("remaining >= 0", name="ck_billing_packages_remaining_not_negative"),
        sa.CheckConstraint("remaining <= quota", name="ck_billing_packages_remaining_within_quota"),
    )
    op.create_index(
        "ix_billing_packages_account_expiry", "billing_packages", ["account_id", "expires_at"]
    )
    op.create_table(
        "billing_bills",
        sa.Column("id", sa.String(32), primary_key=True),
        _account_id("billing_bills"),
        sa.Column("cycle_start", UTCDateTime(), nullable=False),
        sa.Column("cycle_end", UTCDateTime(), nullable=False),
        sa.Column("query_count", sa.BigInteger(), nullable=False),
        sa.Column("amount_li", sa.BigInteger(), nullable=False),
        sa.Column("charged_li", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_billing_bills_account_cycle", "billing_bills", ["account_id", "cycle_start"]
    )
    op.create_table(
        "billing_bill_lines",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "bill_id",
            sa.String(32),
            sa.ForeignKey(
                "billing_bills.id",
                name="fk_billing_bill_lines_bill_id_billing_bills",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("package_count", sa.BigInteger(), nullable=False),
        sa.Column("balance_count", sa.BigInteger(), nullable=False),
        sa.Column("amount_li", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_billing_bill_lines_bill_id", "billing_bill_lines", ["bill_id"])
    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.String(32), primary_key=True),
        _account_id("billing_invoices"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("package_id", sa.String(32), nullable=True),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("amount_li", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("voided_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_billing_invoices_account_id", "billing_invoices", ["account_id"])
    op.create_index("ix_billing_invoices_package_id", "billing_invoices", ["package_id"])
    op.create_table(
        "billing_notifications",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _account_id("billing_notifications"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_billing_notifications_dedupe_key"),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_billing_notifications_account_id", "billing_notifications", ["account_id"])


def downgrade() -> None:
    for table in (
        "billing_notifications",
        "billing_invoices",
        "billing_bill_lines",
        "billing_bills",
        "billing_packages",
        "billing_package_types",
        "billing_ledger_entries",
        "billing_usage_events",
        "billing_query_records",
        "billing_accounts",
    ):
        op.drop_table(table)
