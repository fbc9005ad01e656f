"""Account registration: creation, lookup and real-name verification.

Also the helpers the other accounts modules share.
"""

from __future__ import annotations

import re
import secrets
import string

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.errors import AccountNotFound, AccountPurged, InvalidAccountDetails
from phonestatus.accounts.models import Account, AccountState, VerificationState
from phonestatus.clock import Clock
from phonestatus.ratelimit import parse_limit

_ALPHANUMERIC = string.ascii_letters + string.digits
# Deliberately loose: one @ with text on both sides, within the column's 320 characters.
_EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_PHONE_PATTERN = re.compile(r"\+?[0-9]{5,20}")


def random_alphanumeric(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(8)


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
    ensure_not_purged(account)

    account.verification_state = (
        VerificationState.VERIFIED if approve else VerificationState.REJECTED
    )
    account.verified_by = decided_by
    account.verified_at = clock.now()
    await session.flush()
    return account


async def set_rate_limit(session: AsyncSession, account_id: str, limit: str | None) -> Account:
    """Set the account's query rate in ``limits`` notation, or None for the server default.

    The limit covers API calls and batch jobs alike. Raises
    ``RateLimitConfigError`` for a limit that does not parse.
    """
    if limit is not None:
        limit = limit.strip()
        parse_limit("rate_limit", limit)
    account = await get_account(session, account_id)
    ensure_not_purged(account)
    account.rate_limit = limit
    await session.flush()
    return account


def ensure_not_purged(account: Account) -> None:
    if account.state is AccountState.PURGED:
        raise AccountPurged(account.id)
