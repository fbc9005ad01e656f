"""AccessKeys: creation under the per-account limit, resolution with the decrypted secret, use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from phonestatus.accounts.crypto import DecryptionError, SecretCipher
from phonestatus.accounts.errors import (
    AccessKeyLimitReached,
    AccessKeyNotFound,
    AccountNotFound,
    SecretDecryptionFailed,
)
from phonestatus.accounts.models import AccessKey, Account
from phonestatus.accounts.registration import ensure_not_purged, random_alphanumeric
from phonestatus.clock import Clock

# The market leader allows two AccessKeys per account, so rotation can
# overlap: create the new key, move clients, delete the old one.
ACCESS_KEY_LIMIT = 2
ACCESS_KEY_ID_PREFIX = "LTAI"
ACCESS_KEY_ID_RANDOM_LENGTH = 20
ACCESS_KEY_SECRET_LENGTH = 30
# last_used_at is written at most once per interval per key, so a busy key
# does not turn every signed request into a row update.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ResolvedAccessKey:
    """An AccessKey with its decrypted secret, as signature verification needs it."""

    access_key_id: str
    account_id: str
    secret: str
    enabled: bool

    def __repr__(self) -> str:
        # The secret stays out of reprs, logs and tracebacks.
        return (
            f"ResolvedAccessKey(access_key_id={self.access_key_id!r}, "
            f"account_id={self.account_id!r}, enabled={self.enabled!r})"
        )


async def _lock_account(session: AsyncSession, account_id: str) -> Account:
    """Take the account's write lock for the rest of the transaction.

    Serialises AccessKey creation per account across processes. PostgreSQL
    locks the account row with SELECT ... FOR UPDATE. SQLite has only a
    database-wide write lock, which a no-op UPDATE takes. SQLite waits for
    that lock only when the UPDATE is the transaction's first statement or
    the session began with ``storage.begin_immediate``. After an earlier read
    it raises "database is locked" under contention instead.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await session.execute(
            sa.update(Account).where(Account.id == account_id).values(id=Account.id),
            execution_options={"synchronize_session": False},
        )
        account = await session.get(Account, account_id, populate_existing=True)
    else:
        account = await session.scalar(
            sa.select(Account)
            .where(Account.id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    if account is None:
        raise AccountNotFound(account_id)
    return account


async def create_access_key(
    session: AsyncSession, account_id: str, *, cipher: SecretCipher, clock: Clock
) -> tuple[AccessKey, str]:
    """Create an AccessKey and return it with its plaintext secret.

    The plaintext exists only in the return value, and the row stores the
    ciphertext. Raises ``AccessKeyLimitReached`` when the account already has
    ``ACCESS_KEY_LIMIT`` keys, also when two processes race.
    """
    account = await _lock_account(session, account_id)
    ensure_not_purged(account)

    count = await session.scalar(
        sa.select(sa.func.count()).select_from(AccessKey).where(AccessKey.account_id == account_id)
    )
    if (count or 0) >= ACCESS_KEY_LIMIT:
        raise AccessKeyLimitReached(account_id, ACCESS_KEY_LIMIT)

    access_key_id = ACCESS_KEY_ID_PREFIX + random_alphanumeric(ACCESS_KEY_ID_RANDOM_LENGTH)
    secret = random_alphanumeric(ACCESS_KEY_SECRET_LENGTH)
    access_key = AccessKey(
        id=access_key_id,
        account_id=account_id,
        secret_ciphertext=cipher.encrypt(secret, associated_data=access_key_id.encode()),
        enabled=True,
        created_at=clock.now(),
    )
    session.add(access_key)
    await session.flush()
    return access_key, secret


async def get_access_key(session: AsyncSession, access_key_id: str) -> AccessKey:
    access_key = await session.get(AccessKey, access_key_id)
    if access_key is None:
        raise AccessKeyNotFound(access_key_id)
    return access_key


async def list_access_keys(session: AsyncSession, account_id: str) -> list[AccessKey]:
    statement = (
        sa.select(AccessKey)
        .where(AccessKey.account_id == account_id)
        .order_by(AccessKey.created_at, AccessKey.id)
    )
    return list(await session.scalars(statement))


async def resolve_access_key(
    session: AsyncSession, access_key_id: str, *, cipher: SecretCipher
) -> ResolvedAccessKey | None:
    """Return the key with its decrypted secret, or None when the id is unknown.

    Disabled keys resolve too (``enabled=False``) so the caller can report
    them distinctly. Fails closed: a secret that does not decrypt raises
    ``SecretDecryptionFailed`` rather than resolving.
    """
    if not access_key_id or len(access_key_id) > 32:
        return None
    row = (
        await session.execute(
            sa.select(AccessKey.account_id, AccessKey.secret_ciphertext, AccessKey.enabled).where(
                AccessKey.id == access_key_id
            )
        )
    ).one_or_none()
    if row is None:
        return None

    try:
        secret = cipher.decrypt(row.secret_ciphertext, associated_data=access_key_id.encode())
    except DecryptionError as exc:
        raise SecretDecryptionFailed(access_key_id) from exc
    return ResolvedAccessKey(
        access_key_id=access_key_id,
        account_id=row.account_id,
        secret=secret,
        enabled=row.enabled,
    )


async def touch_access_key(session: AsyncSession, access_key_id: str, *, clock: Clock) -> None:
    """Record use of the key; writes at most once per ``TOUCH_INTERVAL``."""
    await session.run_sync(touch_access_key_sync, access_key_id, clock=clock)


def touch_access_key_sync(session: Session, access_key_id: str, *, clock: Clock) -> None:
    """``touch_access_key`` for a synchronous session."""
    now = clock.now()
    session.execute(
        sa.update(AccessKey)
        .where(
            AccessKey.id == access_key_id,
            sa.or_(
                AccessKey.last_used_at.is_(None),
                AccessKey.last_used_at < now - TOUCH_INTERVAL,
            ),
        )
        .values(last_used_at=now),
        execution_options={"synchronize_session": False},
    )


async def set_access_key_enabled(
    session: AsyncSession, access_key_id: str, enabled: bool
) -> AccessKey:
    access_key = await get_access_key(session, access_key_id)
    access_key.enabled = enabled
    await session.flush()
    return access_key


async def delete_access_key(session: AsyncSession, access_key_id: str) -> None:
    access_key = await get_access_key(session, access_key_id)
    await session.delete(access_key)
    await session.flush()
