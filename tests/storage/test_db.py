from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from phonestatus.settings import to_async_url
from phonestatus.storage import begin_immediate, create_engine, create_session_factory


async def _scratch_engine(fresh_database_url: Callable[[str], str], backend: str) -> AsyncEngine:
    engine = create_engine(to_async_url(fresh_database_url(backend)))
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE items (name VARCHAR(20) PRIMARY KEY)"))
    return engine


async def _names(session_factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with session_factory() as session:
        return list(await session.scalars(sa.text("SELECT name FROM items ORDER BY name")))


class TestCreateEngine:
    async def test_create_engine_sqlite_uses_wal(
        self, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, "sqlite")
        try:
            async with engine.connect() as connection:
                mode = await connection.scalar(sa.text("PRAGMA journal_mode"))
                foreign_keys = await connection.scalar(sa.text("PRAGMA foreign_keys"))
        finally:
            await engine.dispose()

        assert mode == "wal"
        assert foreign_keys == 1

    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    async def test_create_engine_rollback_discards_writes(
        self, backend: str, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, backend)
        session_factory = create_session_factory(engine)
        try:
            async with session_factory() as session:
                await session.execute(sa.text("INSERT INTO items VALUES ('kept')"))
                await session.commit()
                await session.execute(sa.text("INSERT INTO items VALUES ('discarded')"))
                await session.rollback()

            names = await _names(session_factory)
        finally:
            await engine.dispose()

        assert names == ["kept"]

    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    async def test_create_engine_savepoint_rolls_back_alone(
        self, backend: str, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, backend)
        session_factory = create_session_factory(engine)
        try:
            async with session_factory() as session:
                await session.execute(sa.text("INSERT INTO items VALUES ('outer')"))
                savepoint = await session.begin_nested()
                await session.execute(sa.text("INSERT INTO items VALUES ('inner')"))
                await savepoint.rollback()
                await session.commit()

            names = await _names(session_factory)
        finally:
            await engine.dispose()

        assert names == ["outer"]


class TestBeginImmediate:
    async def test_begin_immediate_sqlite_takes_write_lock(
        self, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, "sqlite")
        # A second engine with no busy timeout fails at once instead of waiting.
        url = engine.url.render_as_string(hide_password=False)
        impatient = create_engine(url, connect_args={"timeout": 0})
        try:
            async with create_session_factory(engine)() as holder:
                await begin_immediate(holder)
                async with impatient.connect() as other:
                    await other.exec_driver_sql("PRAGMA busy_timeout=0")
                    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                        await other.execute(sa.text("INSERT INTO items VALUES ('blocked')"))
                await holder.rollback()
        finally:
            await impatient.dispose()
            await engine.dispose()

    async def test_begin_immediate_postgresql_begins_normally(
        self, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, "postgresql")
        session_factory = create_session_factory(engine)
        try:
            async with session_factory() as session:
                await begin_immediate(session)
                await session.execute(sa.text("INSERT INTO items VALUES ('written')"))
                await session.commit()

            names = await _names(session_factory)
        finally:
            await engine.dispose()

        assert names == ["written"]

    async def test_begin_immediate_after_statement_raises(
        self, fresh_database_url: Callable[[str], str]
    ) -> None:
        engine = await _scratch_engine(fresh_database_url, "sqlite")
        try:
            async with create_session_factory(engine)() as session:
                await session.execute(sa.text("SELECT 1"))

                with pytest.raises(RuntimeError, match="before the session's first statement"):
                    await begin_immediate(session)
        finally:
            await engine.dispose()
