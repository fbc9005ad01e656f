from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from phonestatus.billing import QueryUsage
from phonestatus.billing.errors import QueryAlreadyRecorded

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

    async def test_record_after_close_restarts_writer(self, gateway: GatewayHarness) -> None:
        tenant = await gateway.provision()
        recorder = gateway.services.recorder
        await recorder.aclose()
        await recorder.record(usage(tenant.account_id), access_key_id=tenant.signer.access_key_id)
        assert len(await gateway.records(tenant.account_id)) == 1
