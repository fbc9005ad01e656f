"""A gateway app on a real database (SQLite and PostgreSQL), called in process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from phonestatus.accounts import service as accounts
from phonestatus.app import create_app
from phonestatus.billing import QueryRecord
from phonestatus.gateway.pipeline import GatewayPipeline
from phonestatus.gateway.wiring import GatewayServices
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings

from .signer import PreparedRequest, Signer


@dataclass
class Tenant:
    account_id: str
    signer: Signer
    auth_code: str


@dataclass
class GatewayHarness:
    client: httpx.AsyncClient
    services: GatewayServices

    async def provision(
        self, *, feature: bool = True, auth_code_actions: Sequence[str] = ()
    ) -> Tenant:
        clock = self.services.clock
        async with self.services.session_factory() as session, session.begin():
            account = await accounts.create_account(
                session, name="Gateway test", verified=True, clock=clock
            )
            if feature:
                await accounts.enable_feature(
                    session, account.id, accepted_by="tester", clock=clock
                )
            key, secret = await accounts.create_access_key(
                session, account.id, cipher=self.services.cipher, clock=clock
            )
            auth_code = await accounts.create_auth_code(
                session, account.id, actions=auth_code_actions, clock=clock
            )
        return Tenant(account.id, Signer(key.id, secret), auth_code.code)

    async def send(self, prepared: PreparedRequest) -> httpx.Response:
        return await self.client.request(
            prepared.method, prepared.url, content=prepared.body, headers=prepared.headers
        )

    async def records(self, account_id: str) -> list[QueryRecord]:
        async with self.services.session_factory() as session:
            statement = sa.select(QueryRecord).where(QueryRecord.account_id == account_id)
            return list(await session.scalars(statement))


@pytest.fixture
async def gateway(
    db_url: str, settings_factory: Callable[..., Settings]
) -> AsyncIterator[GatewayHarness]:
    settings = settings_factory(database_url=db_url)
    runtime = Runtime.build(settings, upgrade=False)
    services = GatewayServices.from_runtime(runtime)
    app = create_app(settings, runtime=runtime)
    # httpx's ASGITransport does not run the lifespan, so install the pipeline directly.
    app.state.gateway = GatewayPipeline(services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield GatewayHarness(client=client, services=services)
    finally:
        await services.aclose()
        await runtime.close()
