"""Alembic environment: runs migrations on the async engine for both databases."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from phonestatus.storage.db import create_engine
from phonestatus.storage.models_registry import target_metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `phonestatus db upgrade`")
asyncio.run(_run_async())
