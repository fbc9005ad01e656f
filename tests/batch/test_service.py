from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.batch.errors import BatchAccountError, InvalidWebhook, JobNotFound, JobStateError
from phonestatus.batch.intake import decode_block, decode_chunk_numbers
from phonestatus.batch.models import BatchChunk, BatchRowBlock, JobState
from phonestatus.batch.service import (
    JobRequest,
    cancel_job,
    create_job,
    delete_account_jobs,
    format_li,
    get_job,
    list_jobs,
    pause_job,
    resume_job,
)
from phonestatus.billing import PriceList
from phonestatus.billing.packages import buy_package, set_package_type
from phonestatus.detection import Scene

from .conftest import CLOCK, LIMITS, make_account, submit, write_numbers

NUMBERS = ["13800138000", "13912345678", "138 0013 8000", "1.38001E+10", "13012345678", "abc"]


async def create(
    session_factory: async_sessionmaker[AsyncSession],
    request: JobRequest,
    *,
    dry_run: bool = False,
) -> tuple[object, object]:
    async with session_factory() as session, session.begin():
        return await create_job(
            session,
            request,
            limits=LIMITS,
            chunk_size=2,
            prices=PriceList(),
            clock=CLOCK,
            dry_run=dry_run,
        )


class TestCreateJob:
    async def test_create_job_counts_rows(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        job, estimate = await create(
            session_factory, JobRequest(account_id=account_id, path=path, filename="list.csv")
        )

        assert job.state == JobState.QUEUED  # type: ignore[attr-defined]
        assert job.total_rows == 6  # type: ignore[attr-defined]
        assert job.invalid_rows == 2  # type: ignore[attr-defined]
        assert job.duplicate_rows == 1  # type: ignore[attr-defined]
        assert job.distinct_numbers == 3  # type: ignore[attr-defined]
        assert job.chunk_count == 2  # type: ignore[attr-defined]
        assert estimate.amount_li == 300  # type: ignore[attr-defined]

    async def test_create_job_stores_rows_and_chunks(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)
        job_id = await submit(session_factory, account_id, path, chunk_size=2)

        async with session_factory() as session:
            payloads = list(
                await session.scalars(
                    select(BatchRowBlock.payload).where(BatchRowBlock.job_id == job_id)
                )
            )
            chunks = list(
                await session.scalars(
                    select(BatchChunk.numbers)
                    .where(BatchChunk.job_id == job_id)
                    .order_by(BatchChunk.chunk_no)
                )
            )
        rows = [row for payload in payloads for row in decode_block(payload)]
        numbers = [item for text in chunks for item in decode_chunk_numbers(text)]

        assert [row.row_number for row in rows] == [2, 3, 4, 5, 6, 7]
        assert rows[2].duplicate
        assert rows[2].number == "13800138000"
        assert rows[3].reason_code == "PRECISION_LOST"
        assert "科学计数法" in (rows[3].reason_zh or "")
        assert [(item.number, item.row_number) for item in numbers] == [
            ("13800138000", 2),
            ("13912345678", 3),
            ("13012345678", 6),
        ]

    async def test_create_job_dry_run_stores_nothing(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        job, estimate = await create(
            session_factory,
            JobRequest(account_id=account_id, path=path, filename="list.csv"),
            dry_run=True,
        )

        assert job is None
        assert estimate.distinct_numbers == 3  # type: ignore[attr-defined]
        async with session_factory() as session:
            assert not await list_jobs(session, account_id=account_id)

    async def test_create_job_estimate_uses_package_quota(
        self, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
    ) -> None:
        account_id = await make_account(session_factory)
        async with session_factory() as session, session.begin():
            await set_package_type(
                session, "batch-test-2", name="2 次", quota=2, price_li=0, validity_days=30
            )
            await buy_package(
                session, account_id, "batch-test-2", channel="alipay", reference="t", clock=CLOCK
            )
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        _, estimate = await create(
            session_factory,
            JobRequest(account_id=account_id, path=path, filename="list.csv"),
            dry_run=True,
        )

        assert estimate.quota_numbers == 2  # type: ignore[attr-defined]
        assert estimate.charged_numbers == 1  # type: ignore[attr-defined]
        assert estimate.amount_li == 100  # type: ignore[attr-defined]

    async def test_create_job_all_invalid_completes(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.txt", ["abc", "123"], header=None)

        job_id = await submit(session_factory, account_id, path)

        async with session_factory() as session:
            job = await get_job(session, job_id)
        assert job.state == JobState.COMPLETED
        assert job.invalid_rows == 2

    async def test_create_job_feature_not_enabled(
        self, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
    ) -> None:
        account_id = await make_account(session_factory, enabled=False)
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        with pytest.raises(BatchAccountError, match="not enabled"):
            await create(
                session_factory, JobRequest(account_id=account_id, path=path, filename="list.csv")
            )

    async def test_create_job_unknown_account(
        self, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        with pytest.raises(BatchAccountError, match="not found"):
            await create(
                session_factory, JobRequest(account_id="acc_missing", path=path, filename="a.csv")
            )

    async def test_create_job_rejects_attribute_scene(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)

        with pytest.raises(ValueError, match="attribute"):
            await create(
                session_factory,
                JobRequest(
                    account_id=account_id, path=path, filename="a.csv", scene=Scene.ATTRIBUTE
                ),
            )

    @pytest.mark.parametrize(
        ("url", "secret", "match"),
        [
            ("ftp://127.0.0.1/x", "s" * 16, "http"),
            ("http://127.0.0.1/x", "short", "at least 16"),
            ("/relative", "s" * 16, "http"),
        ],
    )
    async def test_create_job_invalid_webhook(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        tmp_path: Path,
        url: str,
        secret: str,
        match: str,
    ) -> None:
        path = write_numbers(tmp_path / "list.csv", NUMBERS)
        request = JobRequest(
            account_id=account_id,
            path=path,
            filename="a.csv",
            webhook_url=url,
            webhook_secret=secret,
        )

        with pytest.raises(InvalidWebhook, match=match):
            await create(session_factory, request)


class TestJobTransitions:
    async def test_pause_resume_cancel(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", NUMBERS)
        )

        async with session_factory() as session, session.begin():
            paused = await pause_job(session, job_id, clock=CLOCK)
        async with session_factory() as session, session.begin():
            resumed = await resume_job(session, job_id, clock=CLOCK)
        async with session_factory() as session, session.begin():
            cancelled = await cancel_job(session, job_id, clock=CLOCK)

        assert paused.state == JobState.PAUSED
        assert resumed.state == JobState.QUEUED
        assert cancelled.state == JobState.CANCELLED
        assert cancelled.finished_at is not None

    async def test_cancel_job_twice_rejected(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", NUMBERS)
        )
        async with session_factory() as session, session.begin():
            await cancel_job(session, job_id, clock=CLOCK)

        async with session_factory() as session:
            with pytest.raises(JobStateError, match="cancelled"):
                await cancel_job(session, job_id, clock=CLOCK)

    async def test_get_job_of_other_account_not_found(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", NUMBERS)
        )
        other = await make_account(session_factory)

        async with session_factory() as session:
            with pytest.raises(JobNotFound):
                await get_job(session, job_id, account_id=other)

    async def test_delete_account_jobs_removes_everything(
        self, session_factory: async_sessionmaker[AsyncSession], account_id: str, tmp_path: Path
    ) -> None:
        job_id = await submit(
            session_factory, account_id, write_numbers(tmp_path / "a.csv", NUMBERS)
        )

        async with session_factory() as session, session.begin():
            await delete_account_jobs(session, account_id)

        async with session_factory() as session:
            with pytest.raises(JobNotFound):
                await get_job(session, job_id)
            blocks = await session.scalar(
                select(func.count())
                .select_from(BatchRowBlock)
                .where(BatchRowBlock.job_id == job_id)
            )
        assert blocks == 0


class TestFormatLi:
    @pytest.mark.parametrize(
        ("amount", "text"), [(0, "0.000"), (100, "0.100"), (123456, "123.456"), (-5, "-0.005")]
    )
    def test_format_li(self, amount: int, text: str) -> None:
        assert format_li(amount) == text


class TestPurgeHook:
    def test_delete_account_jobs_registered_with_billing(self) -> None:
        from phonestatus.billing.purge import registered_purge_hooks

        assert delete_account_jobs in registered_purge_hooks()
