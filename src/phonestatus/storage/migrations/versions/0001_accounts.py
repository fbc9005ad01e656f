"""Accounts, feature activations, console users, AccessKeys and AuthCodes.

Revision ID: 0001_accounts
Revises:
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from phonestatus.storage.db import UTCDateTime

revision: str = "0001_accounts"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _state(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column(
            "verification_state",
            _state(("pending", "verified", "rejected"), "verificationstate"),
            nullable=False,
        ),
        sa.Column("verified_by", sa.String(200), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column(
            "state", _state(("active", "suspended", "purged"), "accountstate"), nullable=False
        ),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("rate_limit", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "feature_activations",
        sa.Column("account_id", sa.String(20), nullable=False),
        sa.Column("feature", sa.String(32), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("accepted_by", sa.String(200), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_feature_activations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "feature", "agreement_version", name=op.f("pk_feature_activations")
        ),
    )
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(20), nullable=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_operator", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(is_operator AND account_id IS NULL) OR (NOT is_operator AND account_id IS NOT NULL)",
            name=op.f("ck_console_users_operator_has_no_account"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_console_users_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
    )
    op.create_index(
        op.f("ix_console_users_account_id"), "console_users", ["account_id"], unique=False
    )
    op.create_table(
        "access_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(20), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_access_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_keys")),
    )
    op.create_index(op.f("ix_access_keys_account_id"), "access_keys", ["account_id"], unique=False)
    op.create_table(
        "auth_codes",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(20), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_auth_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_auth_codes")),
    )
    op.create_index(op.f("ix_auth_codes_account_id"), "auth_codes", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_codes_account_id"), table_name="auth_codes")
    op.drop_table("auth_codes")
    op.drop_index(op.f("ix_access_keys_account_id"), table_name="access_keys")
    op.drop_table("access_keys")
    op.drop_index(op.f("ix_console_users_account_id"), table_name="console_users")
    op.drop_table("console_users")
    op.drop_table("feature_activations")
    op.drop_table("accounts")
