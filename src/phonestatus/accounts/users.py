"""Console users: customer users of an account, and operators, with Argon2id passwords."""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts import passwords
from phonestatus.accounts.errors import InvalidUserAccount, UserExists
from phonestatus.accounts.models import ConsoleUser
from phonestatus.accounts.registration import ensure_not_purged, get_account
from phonestatus.clock import Clock

_USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{2,149}")


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
        ensure_not_purged(await get_account(session, account_id))
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
