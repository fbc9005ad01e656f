"""Apply the Alembic migration history programmatically."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be doubled for configparser interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Upgrade the database at the async SQLAlchemy ``url`` to ``revision``.

    Creates the directory of a SQLite file first.
    """
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    _run_outside_loop(command.upgrade, alembic_config(url), revision)


def downgrade_database(url: str, revision: str = "base") -> None:
    """Downgrade the database at the async SQLAlchemy ``url`` to ``revision``."""
    _run_outside_loop(command.downgrade, alembic_config(url), revision)


def _run_outside_loop(action: Callable[[Config, str], None], config: Config, revision: str) -> None:
    # The migration environment calls asyncio.run(), which cannot nest inside
    # a running loop, so from async code the work moves to a worker thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        action(config, revision)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(action, config, revision).result()
