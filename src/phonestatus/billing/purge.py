"""Purge of accounts whose arrears are older than 7 days.

The purge deletes the account's query records and usage events (the source
of its statistics) and whatever other packages register through
``register_purge_hook`` (batch jobs and results), then marks the account
PURGED. Bills, ledger entries, packages and invoices stay: they are the
operator's financial records. The deletion cannot be undone.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.ledger import lock_account
from phonestatus.billing.models import QueryRecord, UsageEvent
from phonestatus.billing.notify import queue_notification
from phonestatus.clock import Clock

log = structlog.get_logger(__name__)

ARREARS_PURGE_AFTER = timedelta(days=7)

PurgeHook = Callable[[AsyncSession, str], Awaitable[None]]

# Modules that register purge hooks when imported. They are imported before
# every purge, so `phonestatus bill run` deletes their data as `serve` does.
PURGE_HOOK_MODULES = ("phonestatus.batch.service",)

_purge_hooks: list[PurgeHook] = []


def register_purge_hook(hook: PurgeHook) -> None:
    """Register ``hook(session, account_id)`` to delete another package's data in the purge transaction."""
    if hook not in _purge_hooks:
        _purge_hooks.append(hook)


def registered_purge_hooks() -> tuple[PurgeHook, ...]:
    """Return every registered hook, importing ``PURGE_HOOK_MODULES`` first."""
    for module in PURGE_HOOK_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return tuple(_purge_hooks)


async def purge_account(
    session: AsyncSession,
    account_id: str,
    *,
    clock: Clock,
    hooks: Iterable[PurgeHook] = (),
) -> bool:
    """Purge the account if its arrears are still older than 7 days; return whether it did.

    The check is repeated under the account lock, so a recharge that commits
    first (on day 6, or a minute before) prevents the purge.
    """
    billing = await lock_account(session, account_id, clock=clock)
    now = clock.now()
    if billing.purged_at is not None or billing.arrears_since is None:
        return False
    if now - billing.arrears_since < ARREARS_PURGE_AFTER:
        return False

    await session.execute(delete(UsageEvent).where(UsageEvent.account_id == account_id))
    await session.execute(delete(QueryRecord).where(QueryRecord.account_id == account_id))
    for hook in (*registered_purge_hooks(), *hooks):
        await hook(session, account_id)

    account = await session.get(Account, account_id, populate_existing=True)
    assert account is not None
    account.state = AccountState.PURGED
    billing.purged_at = now
    await queue_notification(
        session,
        account_id,
        kind="purged",
        dedupe_key=f"purged:{account_id}",
        subject="phonestatus: account data deleted after unpaid arrears",
        body=(
            f"Account {account_id} was in arrears for more than 7 days, so its query "
            "records, batch results and statistics were deleted permanently."
        ),
        clock=clock,
    )
    log.warning("billing.account_purged", account_id=account_id)
    return True
