from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.models import ConsoleUser
from phonestatus.clock import FrozenClock

from .factories import make_account


class TestConsoleUserConstraint:
    @pytest.mark.parametrize("is_operator", [True, False])
    async def test_console_user_role_and_account_enforced(
        self, session: AsyncSession, clock: FrozenClock, is_operator: bool
    ) -> None:
        account = await make_account(session, clock=clock)
        # An operator with an account, or a customer user without one.
        session.add(
            ConsoleUser(
                id="usr_" + uuid.uuid4().hex[:16],
                account_id=account.id if is_operator else None,
                username=f"constraint-{uuid.uuid4().hex[:8]}",
                password_hash="not-a-real-hash",
                is_operator=is_operator,
                created_at=clock.now(),
            )
        )

        with pytest.raises(IntegrityError, match="operator_has_no_account"):
            await session.flush()
        await session.rollback()


class TestAccountColumns:
    async def test_account_states_stored_as_text(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock, verified=False)

        row = (
            await session.execute(
                sa.text("SELECT state, verification_state FROM accounts WHERE id = :id"),
                {"id": account.id},
            )
        ).one()

        assert tuple(row) == ("active", "pending")
