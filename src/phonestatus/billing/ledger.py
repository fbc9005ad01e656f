"""The prepaid balance: append-only ledger, recharges, arrears and suspension.

An account's balance is the sum of its ledger entries. Bills, purchases from
the balance, refunds and recharges decide on the balance, so each first takes
the account's billing lock with ``lock_account``. Two processes therefore
never act on the same stale balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing.errors import AccountPurged, BillingAccountNotFound, InvalidAmount
from phonestatus.billing.models import BillingAccount, LedgerEntry, LedgerKind
from phonestatus.billing.money import format_cny
from phonestatus.billing.notify import queue_notification
from phonestatus.billing.protocols import PaymentProvider
from phonestatus.clock import Clock


@dataclass(frozen=True, slots=True)
class BalanceView:
    account_id: str
    balance_li: int
    in_arrears: bool
    arrears_since: datetime | None
    state: str


@dataclass(frozen=True, slots=True)
class RechargeResult:
    entry: LedgerEntry
    balance_li: int
    reactivated: bool


async def lock_account(session: AsyncSession, account_id: str, *, clock: Clock) -> BillingAccount:
    """Take the account's billing lock for the rest of the transaction and return its state.

    The lock is a write to the account's ``billing_accounts`` row: PostgreSQL
    holds the row lock until commit, and on SQLite the write takes the
    database's single write lock. Raises ``BillingAccountNotFound``.
    """
    # The UPDATE comes first so that on SQLite the transaction's first statement
    # is a write: a read-only transaction that later writes can fail at once
    # with "database is locked" instead of waiting for the lock.
    bump = (
        update(BillingAccount)
        .where(BillingAccount.account_id == account_id)
        .values(lock_version=BillingAccount.lock_version + 1)
        .returning(BillingAccount.account_id)
        .execution_options(synchronize_session=False)
    )
    if await session.scalar(bump) is None:
        if await session.scalar(select(Account.id).where(Account.id == account_id)) is None:
            raise BillingAccountNotFound(account_id)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(BillingAccount)
            .values(account_id=account_id, lock_version=0, created_at=clock.now())
            .on_conflict_do_nothing(index_elements=["account_id"])
        )
        await session.scalar(bump)
    state = await session.scalar(
        select(BillingAccount)
        .where(BillingAccount.account_id == account_id)
        .execution_options(populate_existing=True)
    )
    assert state is not None
    return state


async def balance_li(session: AsyncSession, account_id: str) -> int:
    """Return the balance in li: the sum of the account's ledger entries."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_li), 0)).where(
            LedgerEntry.account_id == account_id
        )
    )
    return int(total or 0)


async def get_balance(session: AsyncSession, account_id: str) -> BalanceView:
    account = await session.get(Account, account_id)
    if account is None:
        raise BillingAccountNotFound(account_id)
    billing = await session.get(BillingAccount, account_id)
    arrears_since = billing.arrears_since if billing is not None else None
    return BalanceView(
        account_id=account_id,
        balance_li=await balance_li(session, account_id),
        in_arrears=arrears_since is not None,
        arrears_since=arrears_since,
        state=str(account.state),
    )


async def post_entry(
    session: AsyncSession,
    account_id: str,
    *,
    kind: LedgerKind,
    amount_li: int,
    clock: Clock,
    channel: str | None = None,
    reference: str | None = None,
    memo: str | None = None,
) -> LedgerEntry:
    """Append one ledger entry (positive credits, negative debits); the caller holds the lock."""
    entry = LedgerEntry(
        account_id=account_id,
        kind=kind.value,
        amount_li=amount_li,
        channel=channel,
        reference=reference,
        memo=memo,
        created_at=clock.now(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def recharge(
    session: AsyncSession,
    account_id: str,
    amount_li: int,
    *,
    provider: PaymentProvider,
    channel: str,
    reference: str | None = None,
    clock: Clock,
) -> RechargeResult:
    """Credit a confirmed payment; a balance back at zero or above lifts an arrears suspension at once."""
    if amount_li <= 0:
        raise InvalidAmount(format_cny(amount_li), "a recharge must be greater than zero")

    billing = await lock_account(session, account_id, clock=clock)
    if billing.purged_at is not None:
        raise AccountPurged(account_id)

    receipt = await provider.confirm(
        account_id=account_id, amount_li=amount_li, channel=channel, reference=reference
    )
    entry = await post_entry(
        session,
        account_id,
        kind=LedgerKind.RECHARGE,
        amount_li=receipt.amount_li,
        channel=receipt.channel,
        reference=receipt.reference,
        clock=clock,
    )
    balance = await balance_li(session, account_id)
    reactivated = await apply_balance_state(session, billing, balance, clock=clock)
    return RechargeResult(entry=entry, balance_li=balance, reactivated=reactivated)


async def apply_balance_state(
    session: AsyncSession, billing: BillingAccount, balance: int, *, clock: Clock
) -> bool:
    """Move the account into or out of arrears after a balance change; return True if reactivated.

    A negative balance is arrears: the account is suspended and notified once
    per arrears episode. A balance of zero or more ends the episode.
    """
    account = await session.get(Account, billing.account_id, populate_existing=True)
    assert account is not None
    now = clock.now()

    if balance < 0 and billing.arrears_since is None:
        billing.arrears_since = now
        account.state = AccountState.SUSPENDED
        account.suspended_at = now
        await queue_notification(
            session,
            billing.account_id,
            kind="arrears",
            dedupe_key=f"arrears:{billing.account_id}:{now.isoformat()}",
            subject="phonestatus: account suspended for arrears",
            body=(
                f"The balance of account {billing.account_id} is {format_cny(balance)} CNY. "
                "Queries are refused until a recharge brings it back to zero or above. "
                "Data of accounts in arrears for more than 7 days is deleted."
            ),
            clock=clock,
        )
        return False

    if balance >= 0 and billing.arrears_since is not None:
        billing.arrears_since = None
        if account.state == AccountState.SUSPENDED:
            account.state = AccountState.ACTIVE
            account.suspended_at = None
        return True
    return False


DEMO_BALANCE_REFERENCE = "demo-starting-balance"
# Starting balance of the `phonestatus quickstart` demo account (100 CNY), credited once.
DEMO_STARTING_BALANCE_LI = 100_000


async def grant_demo_balance(
    session: AsyncSession, account_id: str, amount_li: int, *, clock: Clock
) -> int:
    """Credit a demo account's starting balance once; return the balance afterwards.

    Re-running it finds the earlier credit by its reference and adds nothing.
    """
    await lock_account(session, account_id, clock=clock)
    granted = await session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.kind == LedgerKind.RECHARGE.value,
            LedgerEntry.reference == DEMO_BALANCE_REFERENCE,
        )
    )
    if granted is None:
        await post_entry(
            session,
            account_id,
            kind=LedgerKind.RECHARGE,
            amount_li=amount_li,
            channel="offline",
            reference=DEMO_BALANCE_REFERENCE,
            memo="starting balance of the quickstart demo account",
            clock=clock,
        )
    return await balance_li(session, account_id)
