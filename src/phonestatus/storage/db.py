"""Engine and session factory for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy import create_engine as _create_engine
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names keep Alembic migrations identical on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite has no time zone support, so values are normalised on the way in
    and tagged with UTC on the way out. Naive values are rejected.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow_column() -> UTCDateTime:
    return UTCDateTime()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


# Execution option naming the SQLite BEGIN mode of a connection's next transaction.
SQLITE_BEGIN_OPTION = "phonestatus_sqlite_begin"


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own implicit BEGIN is switched off, so SQLAlchemy's
    # "begin" event below issues it: that makes SAVEPOINT and BEGIN IMMEDIATE work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; the busy timeout makes a
    # second process wait for the write lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Page cache of a writing connection, in KiB (SQLite's default is 2 MiB). Query
# records are inserted by request id, so each insert lands on a random leaf of
# that index. With the default cache, a million-row index is read back from the
# operating system page by page.
SQLITE_WRITER_CACHE_KIB = 32 * 1024


def _configure_sqlite_writer(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_WRITER_CACHE_KIB}")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(
            f"{SQLITE_BEGIN_OPTION}={mode!r} is invalid; expected DEFERRED or IMMEDIATE"
        )
    connection.exec_driver_sql(f"BEGIN {mode}")


async def begin_immediate(session: AsyncSession) -> None:
    """Begin the session's transaction holding the database write lock at once.

    On SQLite this is ``BEGIN IMMEDIATE``. The transaction waits, up to the busy
    timeout, for other writers before its first read, so a read-then-write
    transaction does not fail at its first write with "database is locked".
    PostgreSQL begins normally, because row locks (SELECT ... FOR UPDATE) do
    that job there.
    """
    if session.in_transaction():
        raise RuntimeError("begin_immediate() must be called before the session's first statement")
    await session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine; SQLite files get WAL mode and foreign keys."""
    if url.startswith("sqlite"):
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, **kwargs)


def create_sync_engine(url: str) -> Engine | None:
    """Return a blocking engine on the same SQLite file as the async ``url``, or None.

    The writer process (``storage.writer``) or a writer thread uses it to run a
    whole transaction without returning to an event loop between statements:
    through aiosqlite every statement waits for a turn of the loop, which on a
    busy server is most of a transaction's time. PostgreSQL gets None: asyncpg
    encodes a group's rows in C, while psycopg, tried in a writer thread, spent
    more Python time per row than it saved.
    """
    if url.startswith("sqlite+aiosqlite:"):
        engine = _create_engine("sqlite:" + url.removeprefix("sqlite+aiosqlite:"))
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "connect", _configure_sqlite_writer)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return None


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
