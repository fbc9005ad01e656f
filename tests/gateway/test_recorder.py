from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from phonestatus.accounts.access_keys import TOUCH_INTERVAL
from phonestatus.accounts.models import AccessKey
from phonestatus.billing import QueryUsage
from phonestatus.billing.errors import QueryAlreadyRecorded
from phonestatus.clock import FrozenClock
from phonestatus.gateway.recorder import QueryRecorder
from phonestatus.storage.db import create_sync_engine

from .conftest import GatewayHarness


def usage(account_id: str, request_id: str | None = None) -> QueryUsage:
    return QueryUsage(
        account_id=account_id,
        action="PhoneNumberStatusForReal",
        request_id=request_id or str(uuid.uuid4()).upper(),
        code="OK",
        status="NORMAL",
        billable=True,
        masked_number="138****8000",
        carrier="CMCC",
        connector="simulated",
        latency_ms=1,
        source="api",
        occurred_at=datetime.now(UTC),
    )


class TestQueryRecorder:
    async def test_record_concurrent_usages_all_committed(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        recorder = gateway.services.recorder
        await asyncio.gather(
            *(
                recorder.record(usage(tenant.account_id), access_key_id=tenant.signer.access_key_id)
                for _ in range(40)
            )
        )
        records = await gateway.records(tenant.account_id)
        assert len(records) == 40
        assert all(record.billable for record in records)

    async def test_record_duplicate_fails_alone(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        recorder = gateway.services.recorder
        key = tenant.signer.access_key_id
        await recorder.record(
            usage(tenant.account_id, "DUPLICATE-" + uuid.uuid4().hex), access_key_id=key
        )
        duplicate_id = (await gateway.records(tenant.account_id))[0].request_id

        results = await asyncio.gather(
            recorder.record(usage(tenant.account_id), access_key_id=key),
            recorder.record(usage(tenant.account_id, duplicate_id), access_key_id=key),
            recorder.record(usage(tenant.account_id), access_key_id=key),
            return_exceptions=True,
        )

        assert results[0] is None
        assert isinstance(results[1], QueryAlreadyRecorded)
        assert results[2] is None
        assert len(await gateway.records(tenant.account_id)) == 3

    async def test_failed_group_retried_alone(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        recorder = gateway.services.recorder
        key = tenant.signer.access_key_id

        # No such account: its record breaks a foreign key, failing the whole group.
        results = await asyncio.gather(
            recorder.record(usage(tenant.account_id), access_key_id=key),
            recorder.record(usage("acc_does_not_exist0"), access_key_id=key),
            recorder.record(usage(tenant.account_id), access_key_id=key),
            return_exceptions=True,
        )
        await recorder.record(usage(tenant.account_id), access_key_id=key)

        assert results[0] is None
        assert isinstance(results[1], Exception)
        assert results[2] is None
        assert len(await gateway.records(tenant.account_id)) == 3

    async def test_record_after_close_restarts_writer(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        recorder = gateway.services.recorder
        await recorder.aclose()
        await recorder.record(usage(tenant.account_id), access_key_id=tenant.signer.access_key_id)
        assert len(await gateway.records(tenant.account_id)) == 1

    async def test_record_touches_access_key_once_per_interval(
        self, gateway: GatewayHarness
    ) -> None:
        tenant = await gateway.provision()
        services = gateway.services
        clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
        recorder = QueryRecorder(
            session_factory=services.session_factory,
            prices=services.prices,
            clock=clock,
            sync_engine=create_sync_engine(services.settings.sqlalchemy_url),
        )
        key = tenant.signer.access_key_id

        async def last_used() -> datetime | None:
            async with services.session_factory() as session:
                return await session.scalar(
                    sa.select(AccessKey.last_used_at).where(AccessKey.id == key)
                )

        try:
            await recorder.record(usage(tenant.account_id), access_key_id=key)
            first = await last_used()
            clock.advance(TOUCH_INTERVAL / 2)
            await recorder.record(usage(tenant.account_id), access_key_id=key)
            unchanged = await last_used()
            clock.advance(TOUCH_INTERVAL)
            await recorder.record(usage(tenant.account_id), access_key_id=key)
            latest = await last_used()
        finally:
            await recorder.aclose()

        assert first is not None
        assert unchanged == first
        assert latest == clock.now()
