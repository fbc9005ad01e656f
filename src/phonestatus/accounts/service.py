"""Accounts service: accounts, verification, feature activation, AccessKeys, AuthCodes, users.

Every function takes an ``AsyncSession`` first and never commits: the caller
owns the unit of work. ``get_*`` raises when the row is missing, ``find_*``
returns None. Errors are the ``phonestatus.accounts.errors`` hierarchy.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts import passwords
from phonestatus.accounts.actions import AUTH_CODE_ACTIONS, STATUS_AND_ATTRIBUTE_ACTIONS
from phonestatus.accounts.agreements import (
    CURRENT_AGREEMENT_VERSION,
    PHONE_STATUS_FEATURE,
    available_versions,
)
from phonestatus.accounts.crypto import DecryptionError, SecretCipher
from phonestatus.accounts.errors import (
    AccessKeyLimitReached,
    AccessKeyNotFound,
    AccountNotFound,
    AccountNotVerified,
    AccountPurged,
    AuthCodeActionMismatch,
    AuthCodeNotFound,
    InvalidAccountDetails,
    InvalidUserAccount,
    SecretDecryptionFailed,
    UnknownAction,
    UnknownAgreementVersion,
    UserExists,
)
from phonestatus.accounts.models import (
    AccessKey,
    Account,
    AccountState,
    AuthCode,
    ConsoleUser,
    FeatureActivation,
    VerificationState,
)
from phonestatus.billing.purge import register_purge_hook
from phonestatus.clock import Clock

__all__ = [
    "ACCESS_KEY_LIMIT",
    "CURRENT_AGREEMENT_VERSION",
    "PHONE_STATUS_FEATURE",
    "STATUS_AND_ATTRIBUTE_ACTIONS",
    "ResolvedAccessKey",
    "authenticate_user",
    "check_auth_code",
    "create_access_key",
    "create_account",
    "create_auth_code",
    "create_user",
    "delete_access_key",
    "enable_feature",
    "find_account",
    "get_access_key",
    "get_account",
    "is_feature_enabled",
    "list_access_keys",
    "list_accounts",
    "list_auth_code_records",
    "list_auth_codes",
    "list_feature_activations",
    "purge_account_credentials",
    "resolve_access_key",
    "revoke_auth_code",
    "set_access_key_enabled",
    "touch_access_key",
    "verify_account",
]

# The market leader allows two AccessKeys per account, so rotation can
# overlap: create the new key, move clients, delete the old one.
ACCESS_KEY_LIMIT = 2
ACCESS_KEY_ID_PREFIX = "LTAI"
ACCESS_KEY_ID_RANDOM_LENGTH = 20
ACCESS_KEY_SECRET_LENGTH = 30
AUTH_CODE_LENGTH = 12
# last_used_at is written at most once per interval per key, so a busy key
# does not turn every signed request into a row update.
TOUCH_INTERVAL = timedelta(seconds=60)

_ALPHANUMERIC = string.ascii_letters + string.digits
_USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{2,149}")
# Deliberately loose: one @ with text on both sides, within the column's 320 characters.
_EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_PHONE_PATTERN = re.compile(r"\+?[0-9]{5,20}")


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


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(8)


# Accounts ------------------------------------------------------------------


async def create_account(
    session: AsyncSession,
    *,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    verified: bool = False,
    clock: Clock,
    decided_by: str = "operator",
    account_id: str | None = None,
) -> Account:
    """Create an account; ``verified`` records ``decided_by`` as the verifier."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidAccountDetails("account name", name, "1 to 200 characters")
    if email and not _EMAIL_PATTERN.fullmatch(email):
        raise InvalidAccountDetails("email", email, "an address like ops@example.com")
    if phone and not _PHONE_PATTERN.fullmatch(phone):
        raise InvalidAccountDetails("phone", phone, "5 to 20 digits, optionally starting with +")

    now = clock.now()
    account = Account(
        id=account_id or new_account_id(),
        name=name,
        email=email or None,
        phone=phone or None,
        verification_state=VerificationState.VERIFIED if verified else VerificationState.PENDING,
        verified_by=decided_by if verified else None,
        verified_at=now if verified else None,
        state=AccountState.ACTIVE,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account


async def find_account(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def get_account(session: AsyncSession, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


async def list_accounts(session: AsyncSession) -> list[Account]:
    result = await session.scalars(sa.select(Account).order_by(Account.created_at, Account.id))
    return list(result)


async def verify_account(
    session: AsyncSession,
    account_id: str,
    *,
    decided_by: str,
    approve: bool = True,
    clock: Clock,
) -> Account:
    """Record the real-name verification decision (approve or reject) and who made it."""
    account = await get_account(session, account_id)
    _ensure_not_purged(account)

    account.verification_state = (
        VerificationState.VERIFIED if approve else VerificationState.REJECTED
    )
    account.verified_by = decided_by
    account.verified_at = clock.now()
    await session.flush()
    return account


def _ensure_not_purged(account: Account) -> None:
    if account.state is AccountState.PURGED:
        raise AccountPurged(account.id)


# Feature activation --------------------------------------------------------


async def enable_feature(
    session: AsyncSession,
    account_id: str,
    *,
    accepted_by: str,
    agreement_version: int = CURRENT_AGREEMENT_VERSION,
    clock: Clock,
    feature: str = PHONE_STATUS_FEATURE,
) -> FeatureActivation:
    """Enable ``feature`` by recording acceptance of an agreement version.

    The account must have passed real-name verification. Accepting a version
    the account already accepted returns the existing record.
    """
    versions = available_versions(feature)
    if agreement_version not in versions:
        raise UnknownAgreementVersion(agreement_version, versions)
    account = await get_account(session, account_id)
    _ensure_not_purged(account)
    if not account.is_verified:
        raise AccountNotVerified(account_id)

    existing = await session.get(FeatureActivation, (account_id, feature, agreement_version))
    if existing is not None:
        return existing

    activation = FeatureActivation(
        account_id=account_id,
        feature=feature,
        agreement_version=agreement_version,
        accepted_by=accepted_by,
        accepted_at=clock.now(),
    )
    session.add(activation)
    await session.flush()
    return activation


async def is_feature_enabled(
    session: AsyncSession, account_id: str, feature: str = PHONE_STATUS_FEATURE
) -> bool:
    # NOTE: acceptance of any shipped agreement version keeps the feature on;
    # publishing a new version does not switch existing accounts off.
    statement = (
        sa.select(FeatureActivation.account_id)
        .where(FeatureActivation.account_id == account_id, FeatureActivation.feature == feature)
        .limit(1)
    )
    return (await session.scalar(statement)) is not None


async def list_feature_activations(
    session: AsyncSession, account_id: str
) -> list[FeatureActivation]:
    statement = (
        sa.select(FeatureActivation)
        .where(FeatureActivation.account_id == account_id)
        .order_by(FeatureActivation.accepted_at)
    )
    return list(await session.scalars(statement))


# AccessKeys ----------------------------------------------------------------


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
    _ensure_not_purged(account)

    count = await session.scalar(
        sa.select(sa.func.count()).select_from(AccessKey).where(AccessKey.account_id == account_id)
    )
    if (count or 0) >= ACCESS_KEY_LIMIT:
        raise AccessKeyLimitReached(account_id, ACCESS_KEY_LIMIT)

    access_key_id = ACCESS_KEY_ID_PREFIX + _random_text(ACCESS_KEY_ID_RANDOM_LENGTH)
    secret = _random_text(ACCESS_KEY_SECRET_LENGTH)
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
    now = clock.now()
    await session.execute(
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


# AuthCodes -----------------------------------------------------------------


async def create_auth_code(
    session: AsyncSession,
    account_id: str,
    *,
    actions: Sequence[str] = (),
    clock: Clock,
) -> AuthCode:
    """Issue an AuthCode for ``actions``; none means every status and attribution action."""
    for action in actions:
        if action not in AUTH_CODE_ACTIONS:
            raise UnknownAction(action, AUTH_CODE_ACTIONS)
    account = await get_account(session, account_id)
    _ensure_not_purged(account)

    auth_code = AuthCode(
        code=_random_text(AUTH_CODE_LENGTH),
        account_id=account_id,
        actions=list(dict.fromkeys(actions)),
        created_at=clock.now(),
    )
    session.add(auth_code)
    await session.flush()
    return auth_code


async def check_auth_code(session: AsyncSession, account_id: str, code: str, action: str) -> None:
    """Raise unless ``code`` is live, belongs to ``account_id`` and covers ``action``.

    An unknown code, a revoked code and another account's code all raise
    ``AuthCodeNotFound``, so a caller cannot probe other accounts' codes.
    """
    auth_code = await session.get(AuthCode, code) if code and len(code) <= 32 else None
    if auth_code is None or auth_code.is_revoked or auth_code.account_id != account_id:
        raise AuthCodeNotFound(code)

    allowed = auth_code.actions or STATUS_AND_ATTRIBUTE_ACTIONS
    if action not in allowed:
        raise AuthCodeActionMismatch(code, action)


async def list_auth_codes(session: AsyncSession, account_id: str) -> list[str]:
    """Return the account's codes that are not revoked."""
    statement = (
        sa.select(AuthCode.code)
        .where(AuthCode.account_id == account_id, AuthCode.revoked_at.is_(None))
        .order_by(AuthCode.created_at, AuthCode.code)
    )
    return list(await session.scalars(statement))


async def list_auth_code_records(session: AsyncSession, account_id: str) -> list[AuthCode]:
    """Return every code of the account, revoked ones included."""
    statement = (
        sa.select(AuthCode)
        .where(AuthCode.account_id == account_id)
        .order_by(AuthCode.created_at, AuthCode.code)
    )
    return list(await session.scalars(statement))


async def revoke_auth_code(session: AsyncSession, code: str, *, clock: Clock) -> AuthCode:
    """Revoke the code; revoking it again keeps the first revocation time."""
    auth_code = await session.get(AuthCode, code)
    if auth_code is None:
        raise AuthCodeNotFound(code)
    if auth_code.revoked_at is None:
        auth_code.revoked_at = clock.now()
        await session.flush()
    return auth_code


# Console users -------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    account_id: str | None,
    *,
    username: str,
    password: str,
    is_operator: bool = False,
    clock: Clock,
) -> ConsoleUser:
    """Create a console user; operators have no account, customer users exactly one."""
    if is_operator and account_id is not None:
        raise InvalidUserAccount("an operator belongs to no account; omit the account id")
    if not is_operator and account_id is None:
        raise InvalidUserAccount("a customer user needs an account id")
    if not _USERNAME_PATTERN.fullmatch(username):
        raise InvalidUserAccount(
            f"username {username!r} is invalid; use 3-150 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    passwords.check_password_policy(password)
    if account_id is not None:
        _ensure_not_purged(await get_account(session, account_id))
    existing_user_id = await session.scalar(
        sa.select(ConsoleUser.id).where(ConsoleUser.username == username)
    )
    if existing_user_id is not None:
        raise UserExists(username)

    user = ConsoleUser(
        id="usr_" + secrets.token_hex(8),
        account_id=account_id,
        username=username,
        password_hash=await passwords.hash_password(password),
        is_operator=is_operator,
        created_at=clock.now(),
    )
    session.add(user)
    try:
        # A savepoint, so losing a race on the unique username leaves the
        # caller's transaction usable.
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise UserExists(username) from exc
    return user


async def authenticate_user(
    session: AsyncSession, username: str, password: str
) -> ConsoleUser | None:
    """Return the user when the password matches, else None.

    A hash made with older Argon2 parameters is replaced in the session, so
    the caller's commit upgrades it.
    """
    user = await session.scalar(sa.select(ConsoleUser).where(ConsoleUser.username == username))
    matched = await passwords.verify_password(
        user.password_hash if user is not None else None, password
    )
    if user is None or not matched:
        return None

    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
        await session.flush()
    return user


# Purge ---------------------------------------------------------------------


async def purge_account_credentials(session: AsyncSession, account_id: str) -> None:
    """Delete the account's AccessKeys and AuthCodes when billing purges it.

    A purged account can never call the API again, so its credentials go
    with its data. The account row, its console users and its agreement
    acceptances stay, next to the bills that billing keeps.
    """
    await session.execute(sa.delete(AccessKey).where(AccessKey.account_id == account_id))
    await session.execute(sa.delete(AuthCode).where(AuthCode.account_id == account_id))


register_purge_hook(purge_account_credentials)
