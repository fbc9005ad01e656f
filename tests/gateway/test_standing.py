from __future__ import annotations

import asyncio

import sqlalchemy as sa

from phonestatus.accounts import service as accounts
from phonestatus.accounts.models import Account, AccountState
from phonestatus.billing import BlockReason
from phonestatus.gateway.standing import AuthCodeCheck, StandingReader, TtlCache

from .conftest import GatewayHarness


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTtlCache:
    def test_get_returns_value_until_expiry(self) -> None:
        clock = FakeMonotonic()
        cache: TtlCache[str, int] = TtlCache(5, monotonic=clock)
        cache.put("a", 1)
        clock.now += 4.9
        assert cache.get("a") == 1
        clock.now += 0.2
        assert cache.get("a") is None

    def test_zero_ttl_stores_nothing(self) -> None:
        cache: TtlCache[str, int] = TtlCache(0)
        cache.put("a", 1)
        assert cache.get("a") is None

    def test_full_cache_starts_over(self) -> None:
        cache: TtlCache[str, int] = TtlCache(60, max_entries=2)
        cache.put("a", 1)
        cache.put("b", 2)
        cache.put("c", 3)
        assert cache.get("a") is None
        assert cache.get("c") == 3


async def suspend(gateway: GatewayHarness, account_id: str) -> None:
    async with gateway.services.session_factory() as session, session.begin():
        await session.execute(
            sa.update(Account).where(Account.id == account_id).values(state=AccountState.SUSPENDED)
        )


def reader(gateway: GatewayHarness, ttl_seconds: float) -> StandingReader:
    return StandingReader(
        session_factory=gateway.services.session_factory,
        cipher=gateway.services.cipher,
        ttl_seconds=ttl_seconds,
    )


class TestStandingReader:
    async def test_account_without_reuse_sees_suspension(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        standing = reader(gateway, 0)
        assert (await standing.account(tenant.account_id)).block_reason is None
        await suspend(gateway, tenant.account_id)
        assert (await standing.account(tenant.account_id)).block_reason is BlockReason.ARREARS

    async def test_account_reused_within_ttl(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        standing = reader(gateway, 3600)
        first = await standing.account(tenant.account_id)
        await suspend(gateway, tenant.account_id)
        assert await standing.account(tenant.account_id) == first

    async def test_access_key_resolves_secret(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        key = await reader(gateway, 60).access_key(tenant.signer.access_key_id)
        assert key is not None
        assert key.secret == tenant.signer.secret
        assert key.account_id == tenant.account_id

    async def test_unknown_access_key_is_none(self, gateway: GatewayHarness) -> None:
        assert await reader(gateway, 60).access_key("LTAInobody") is None

    async def test_auth_code_checks(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        standing = reader(gateway, 60)
        valid = await standing.auth_code(
            tenant.account_id, tenant.auth_code, "PhoneNumberStatusForReal"
        )
        mismatch = await standing.auth_code(
            tenant.account_id, tenant.auth_code, "DescribeEmptyNumber"
        )
        missing = await standing.auth_code(tenant.account_id, "NOPE", "PhoneNumberStatusForReal")
        assert valid is AuthCodeCheck.VALID
        assert mismatch is AuthCodeCheck.ACTION_MISMATCH
        assert missing is AuthCodeCheck.NOT_FOUND

    async def test_revoked_auth_code_seen_without_reuse(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        standing = reader(gateway, 0)
        async with gateway.services.session_factory() as session, session.begin():
            await accounts.revoke_auth_code(session, tenant.auth_code, clock=gateway.services.clock)
        check = await standing.auth_code(
            tenant.account_id, tenant.auth_code, "PhoneNumberStatusForReal"
        )
        assert check is AuthCodeCheck.NOT_FOUND


class TestReadThrough:
    async def test_concurrent_misses_share_one_read(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        standing = reader(gateway, 60)
        loads = 0
        original = standing._session_factory

        def counting_factory() -> object:
            nonlocal loads
            loads += 1
            return original()

        standing._session_factory = counting_factory  # type: ignore[assignment]
        results = await asyncio.gather(*(standing.account(tenant.account_id) for _ in range(20)))
        assert loads == 1
        assert len(set(results)) == 1
