from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


# Waits for the start file, then upgrades; several copies run at once.
_CONCURRENT_UPGRADE = """
import sys, time
from pathlib import Path
from phonestatus.storage import upgrade_database
url, go = sys.argv[1], Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
upgrade_database(url)
"""


def _upgrade_in_processes(url: str, go_file: Path, count: int) -> list[tuple[int, str]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_UPGRADE, url, str(go_file)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    # Imports take most of a process's start-up, so give them time before the signal.
    time.sleep(3)
    go_file.touch()
    return [(process.wait(timeout=120), process.communicate()[1]) for process in processes]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_from_several_processes_succeeds(
    backend: str, fresh_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    """Several servers starting together on an empty database all come up."""
    url = to_async_url(fresh_database_url(backend))

    results = await asyncio.to_thread(_upgrade_in_processes, url, tmp_path / "go", 3)

    for returncode, stderr in results:
        assert returncode == 0, stderr
    engine = create_engine(url)
    async with engine.connect() as connection:
        versions = list(
            await connection.scalars(sa.text("SELECT version_num FROM alembic_version"))
        )
    await engine.dispose()
    assert versions == [ScriptDirectory.from_config(alembic_config(url)).get_current_head()]
