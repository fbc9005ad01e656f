from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, upgrade_database
from phonestatus.storage.migrate import downgrade_database
from phonestatus.storage.models_registry import target_metadata


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_from_empty_creates_every_table(
    backend: str, fresh_database_url: Callable[[str], str]
) -> None:
    url = to_async_url(fresh_database_url(backend))

    upgrade_database(url)

    engine = create_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    expected = set(target_metadata().tables) | {"alembic_version"}
    assert expected <= tables


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_downgrade_to_base_removes_tables(
    backend: str, fresh_database_url: Callable[[str], str]
) -> None:
    url = to_async_url(fresh_database_url(backend))
    upgrade_database(url)

    downgrade_database(url, "base")

    engine = create_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    assert tables <= {"alembic_version"}
