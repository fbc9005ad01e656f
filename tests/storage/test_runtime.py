from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from phonestatus.runtime import Runtime
from phonestatus.settings import Settings


async def _tables(runtime: Runtime) -> set[str]:
    async with runtime.engine.connect() as connection:
        return await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))


class TestRuntimeBuild:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    async def test_build_upgrades_empty_database(
        self,
        backend: str,
        fresh_database_url: Callable[[str], str],
        settings_factory: Callable[..., Settings],
    ) -> None:
        settings = settings_factory(database_url=fresh_database_url(backend))

        runtime = Runtime.build(settings)
        try:
            tables = await _tables(runtime)
        finally:
            await runtime.close()

        assert {"accounts", "access_keys", "auth_codes", "alembic_version"} <= tables

    async def test_build_without_upgrade_leaves_database_empty(
        self,
        fresh_database_url: Callable[[str], str],
        settings_factory: Callable[..., Settings],
    ) -> None:
        settings = settings_factory(database_url=fresh_database_url("sqlite"))

        runtime = Runtime.build(settings, upgrade=False)
        try:
            tables = await _tables(runtime)
        finally:
            await runtime.close()

        assert tables == set()

    async def test_build_resolves_secret_key(
        self,
        fresh_database_url: Callable[[str], str],
        settings_factory: Callable[..., Settings],
    ) -> None:
        settings = settings_factory(
            database_url=fresh_database_url("sqlite"), secret_key="runtime-test-secret-key"
        )

        runtime = Runtime.build(settings, upgrade=False)
        await runtime.close()

        assert runtime.secret_key == b"runtime-test-secret-key"
