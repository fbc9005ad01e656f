"""Shared fixtures: both databases, Redis, and isolated settings.

Storage tests take the ``db_url`` fixture, which is parametrised over SQLite
and PostgreSQL. PostgreSQL gets a database created for this test session and
dropped at its end. With ``PHONESTATUS_REQUIRE_SERVICES=1`` (set by CI) a
missing PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.settings import Settings
from phonestatus.storage import create_engine, create_session_factory, upgrade_database

POSTGRES_URL = os.environ.get(
    "PHONESTATUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PHONESTATUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("PHONESTATUS_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def _admin_execute_async(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _admin_execute(statement: str) -> None:
    # A worker thread has no running loop, so this works from sync and async tests alike.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin_execute_async(statement)).result()


class PostgresDatabases:
    """Creates throwaway PostgreSQL databases and drops them at the end of the run."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.base = POSTGRES_URL.rsplit("/", 1)[0]

    def create(self) -> str:
        name = f"phonestatus_test_{uuid.uuid4().hex[:12]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.base}/{name}"

    def drop_all(self) -> None:
        for name in self.created:
            _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    """Undo logging configuration a test made (CLI commands configure structlog globally)."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    try:
        _admin_execute("SELECT 1")
    except Exception as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """Return a factory: backend name ('sqlite' or 'postgresql') -> empty database URL.

    The URL is a plain one (postgresql:// or sqlite:///); pass it through
    ``to_async_url`` or ``Settings(database_url=...)``.
    """

    def make(backend: str) -> str:
        if backend == "sqlite":
            directory = tmp_path_factory.mktemp("sqlite")
            return f"sqlite:///{directory / 'phonestatus.sqlite3'}"
        if backend == "postgresql":
            databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
            return databases.create()
        raise ValueError(f"unknown backend {backend!r}")

    return make


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_url(
    db_backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """A migrated database shared by this test session, as a plain URL."""
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite-shared') / 'phonestatus.sqlite3'}"
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    upgrade_database(Settings(database_url=url).sqlalchemy_url)
    return url


@pytest.fixture
async def session_factory(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(Settings(database_url=db_url).sqlalchemy_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings isolated in a temporary data dir; keyword arguments override fields."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "secret_key": secrets.token_urlsafe(32),
            "simulator_latency_scale": 0.0,
            "number_rate_limit": "off",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make
