"""Tables of the accounts package (created by migration ``0001_accounts``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from phonestatus.storage import Base


class AccountState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # in arrears; queries are refused until the arrears are paid
    PURGED = "purged"  # arrears older than 7 days; the account's data is gone


class VerificationState(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


def _string_enum(enum: type[StrEnum]) -> sa.Enum:
    # Stored as VARCHAR with the enum's values, so adding a value needs no
    # type migration on PostgreSQL and SQLite stores the same text.
    return sa.Enum(
        enum,
        native_enum=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    verification_state: Mapped[VerificationState] = mapped_column(
        _string_enum(VerificationState), default=VerificationState.PENDING
    )
    verified_by: Mapped[str | None] = mapped_column(sa.String(200))
    verified_at: Mapped[datetime | None]
    state: Mapped[AccountState] = mapped_column(
        _string_enum(AccountState), default=AccountState.ACTIVE
    )
    suspended_at: Mapped[datetime | None]
    # Per-account query rate override in `limits` notation ("500/second");
    # None uses the service-wide setting.
    rate_limit: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]

    @property
    def is_verified(self) -> bool:
        return self.verification_state is VerificationState.VERIFIED


class FeatureActivation(Base):
    """One acceptance of a service agreement version that enabled a feature."""

    __tablename__ = "feature_activations"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    agreement_version: Mapped[int] = mapped_column(primary_key=True)
    accepted_by: Mapped[str] = mapped_column(sa.String(200))
    accepted_at: Mapped[datetime]


class ConsoleUser(Base):
    """A person who signs in to the console: a customer user or an operator.

    Operators belong to no account; customer users belong to exactly one.
    """

    __tablename__ = "console_users"
    __table_args__ = (
        sa.CheckConstraint(
            "(is_operator AND account_id IS NULL) OR (NOT is_operator AND account_id IS NOT NULL)",
            name="operator_has_no_account",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(sa.String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_operator: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class AccessKey(Base):
    __tablename__ = "access_keys"

    # The AccessKeyId clients send; not a secret.
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # AES-GCM ciphertext bound to `id` (see accounts.crypto); never the plaintext.
    secret_ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class AuthCode(Base):
    """An authorization code (the ``AuthCode`` request parameter) issued to an account."""

    __tablename__ = "auth_codes"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # Action names the code is valid for; empty means every status and
    # attribution action (STATUS_AND_ATTRIBUTE_ACTIONS).
    actions: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
