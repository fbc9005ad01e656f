from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, upgrade_database
from phonestatus.storage.migrate import alembic_config, downgrade_database
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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_matches_models(
    backend: str, fresh_database_url: Callable[[str], str]
) -> None:
    """The migrated schema equals the models, so no migration is missing a change."""
    url = to_async_url(fresh_database_url(backend))
    upgrade_database(url)
    metadata = target_metadata()

    def compare(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_engine(url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(compare)
    await engine.dispose()
    assert differences == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_twice_is_a_no_op(
    backend: str, fresh_database_url: Callable[[str], str]
) -> None:
    url = to_async_url(fresh_database_url(backend))
    upgrade_database(url)

    upgrade_database(url)

    engine = create_engine(url)
    async with engine.connect() as connection:
        version = await connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    await engine.dispose()
    assert version == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
