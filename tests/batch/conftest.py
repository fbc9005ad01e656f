"""Fixtures for batch tests: an enabled account, a query engine and a worker factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.service import create_account, enable_feature
from phonestatus.batch.readers import ReaderLimits
from phonestatus.batch.service import JobRequest, create_job, delete_account_jobs
from phonestatus.batch.worker import BatchWorker
from phonestatus.billing import PriceList, QueryRecord
from phonestatus.clock import SystemClock
from phonestatus.detection import QueryEngine
from phonestatus.ratelimit import AccountRateLimiter, RateLimitStorage
from phonestatus.settings import Settings
from phonestatus.storage.db import create_sync_engine

LIMITS = ReaderLimits(
    max_file_bytes=50 * 1024 * 1024, max_rows=100_000, max_xlsx_uncompressed_bytes=10**9
)
CLOCK = SystemClock()


async def make_account(
    session_factory: async_sessionmaker[AsyncSession], *, enabled: bool = True
) -> str:
    async with session_factory() as session, session.begin():
        account = await create_account(session, name="批量客户", verified=True, clock=CLOCK)
        if enabled:
            await enable_feature(session, account.id, accepted_by="test", clock=CLOCK)
        return account.id


@pytest.fixture
async def account_id(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    account_id = await make_account(session_factory)
    yield account_id
    # Leave no claimable job behind for workers of other tests sharing the database.
    async with session_factory() as session, session.begin():
        await delete_account_jobs(session, account_id)


@pytest.fixture
def batch_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def engine(batch_settings: Settings) -> AsyncIterator[QueryEngine]:
    engine = QueryEngine.from_settings(batch_settings, clock=CLOCK)
    yield engine
    await engine.aclose()


@pytest.fixture
def sync_engine(db_url: str) -> Iterator[Engine | None]:
    """The blocking SQLite engine a worker commits through; None on PostgreSQL."""
    engine = create_sync_engine(Settings(database_url=db_url).sqlalchemy_url)
    yield engine
    if engine is not None:
        engine.dispose()


@pytest.fixture
def make_worker(
    session_factory: async_sessionmaker[AsyncSession],
    engine: QueryEngine,
    sync_engine: Engine | None,
) -> Callable[..., BatchWorker]:
    def make(**overrides: object) -> BatchWorker:
        values: dict[str, object] = {
            "session_factory": session_factory,
            "engine": engine,
            "prices": PriceList(),
            "clock": CLOCK,
            "rate_limiter": AccountRateLimiter(storage=RateLimitStorage.from_url(None)),
            "default_rate_limit": "100000/second",
            "sync_engine": sync_engine,
        }
        values.update(overrides)
        return BatchWorker(**values)  # type: ignore[arg-type]

    return make


def write_numbers(path: Path, numbers: list[str], header: str | None = "手机号") -> Path:
    lines = ([header] if header else []) + numbers
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def submit(
    session_factory: async_sessionmaker[AsyncSession],
    account_id: str,
    path: Path,
    *,
    chunk_size: int = 7,
    **request: object,
) -> str:
    async with session_factory() as session, session.begin():
        job, _ = await create_job(
            session,
            JobRequest(account_id=account_id, path=path, filename=path.name, **request),  # type: ignore[arg-type]
            limits=LIMITS,
            chunk_size=chunk_size,
            prices=PriceList(),
            clock=CLOCK,
        )
        assert job is not None
        return job.id


async def billing_counts(
    session_factory: async_sessionmaker[AsyncSession], job_id: str
) -> tuple[int, int, int]:
    """Return (query records, distinct request ids, billable records) of a job."""
    async with session_factory() as session:
        row = (
            await session.execute(
                select(
                    func.count(QueryRecord.id),
                    func.count(func.distinct(QueryRecord.request_id)),
                    func.count(QueryRecord.id).filter(QueryRecord.billable.is_(True)),
                ).where(QueryRecord.request_id.like(f"{job_id}:%"))
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])
