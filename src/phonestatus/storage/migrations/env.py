"""Alembic environment: runs migrations on the async engine for both databases."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from phonestatus.storage.db import SQLITE_BEGIN_OPTION, create_engine
from phonestatus.storage.models_registry import target_metadata

config = context.config


# Key of the PostgreSQL advisory lock that serialises migration runs.
MIGRATION_LOCK_KEY = 7_346_590_128


def _run(connection: Connection) -> None:
    # Several processes may upgrade the same database at once (servers starting
    # together, CLI commands). Each waits for the others, then finds the
    # version table current and has nothing left to do. SQLite gets the
    # database write lock with BEGIN IMMEDIATE; PostgreSQL takes an advisory
    # lock that its transaction releases.
    if connection.dialect.name == "sqlite":
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    # Alembic treats SQLite DDL as non-transactional and would run each revision
    # in its own transaction, reading the version table before taking the lock.
    # SQLite does support transactional DDL, so the whole run is one
    # transaction and a second process waits, then sees the new version.
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `phonestatus db upgrade`")
asyncio.run(_run_async())
