"""Authorization codes (the ``AuthCode`` request parameter), bound to actions and revocable."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.actions import AUTH_CODE_ACTIONS, STATUS_AND_ATTRIBUTE_ACTIONS
from phonestatus.accounts.errors import AuthCodeActionMismatch, AuthCodeNotFound, UnknownAction
from phonestatus.accounts.models import AuthCode
from phonestatus.accounts.registration import ensure_not_purged, get_account, random_alphanumeric
from phonestatus.clock import Clock

AUTH_CODE_LENGTH = 12


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
    ensure_not_purged(account)

    auth_code = AuthCode(
        code=random_alphanumeric(AUTH_CODE_LENGTH),
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
