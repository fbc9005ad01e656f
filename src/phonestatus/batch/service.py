"""Batch jobs: create from a file (or estimate its cost), look up, pause, resume, cancel.

Functions take the caller's ``AsyncSession`` and never commit; the CLI
command or HTTP request owns the unit of work.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.accounts.models import Account
from phonestatus.accounts.service import is_feature_enabled
from phonestatus.batch.errors import (
    BatchAccountError,
    InvalidWebhook,
    JobNotFound,
    JobStateError,
)
from phonestatus.batch.intake import Intake, IntakeBatch, IntakeCounts
from phonestatus.batch.models import (
    BatchChunk,
    BatchJob,
    BatchJobCount,
    BatchRowBlock,
    JobState,
)
from phonestatus.batch.readers import ReaderLimits, open_source
from phonestatus.billing import PriceList, account_block_reason
from phonestatus.billing.packages import quota_summary
from phonestatus.billing.purge import register_purge_hook
from phonestatus.clock import Clock
from phonestatus.detection import Scene

# Wire action each batch scene is metered as.
SCENE_ACTIONS: dict[Scene, str] = {
    Scene.REAL: "PhoneNumberStatusForReal",
    Scene.SMS: "PhoneNumberStatusForSms",
    Scene.VOICE: "PhoneNumberStatusForVoice",
    Scene.ACCOUNT: "PhoneNumberStatusForAccount",
    Scene.PUBLIC: "PhoneNumberStatusForPublic",
    Scene.LEGACY: "DescribePhoneNumberStatus",
    Scene.EMPTY: "DescribeEmptyNumber",
}
MIN_WEBHOOK_SECRET_CHARS = 16
WEBHOOK_SECRET_INFO = b"batch-webhook"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A customer's request: a file, the scene and an optional completion webhook."""

    account_id: str
    path: Path
    filename: str
    scene: Scene = Scene.REAL
    column: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """Cost before a job starts, assuming every distinct valid number is billable.

    Numbers answered UNKNOWN or refused are free, so the real cost can only be
    lower. Package quota is used first, the rest is charged at the unit price.
    """

    total_rows: int
    invalid_rows: int
    duplicate_rows: int
    distinct_numbers: int
    quota_numbers: int
    charged_numbers: int
    unit_price_li: int
    amount_li: int  # 0.001 CNY

    def as_dict(self) -> dict[str, Any]:
        return {
            "TotalRows": self.total_rows,
            "InvalidRows": self.invalid_rows,
            "DuplicateRows": self.duplicate_rows,
            "DistinctNumbers": self.distinct_numbers,
            "QuotaNumbers": self.quota_numbers,
            "ChargedNumbers": self.charged_numbers,
            "UnitPrice": format_li(self.unit_price_li),
            "Amount": format_li(self.amount_li),
        }


def format_li(amount_li: int) -> str:
    """Return li (0.001 CNY) as CNY text with three decimals, e.g. 100 -> "0.100"."""
    sign = "-" if amount_li < 0 else ""
    whole, fraction = divmod(abs(amount_li), 1000)
    return f"{sign}{whole}.{fraction:03d}"


def new_job_id() -> str:
    return "job_" + secrets.token_hex(8)


async def create_job(
    session: AsyncSession,
    request: JobRequest,
    *,
    limits: ReaderLimits,
    chunk_size: int,
    prices: PriceList,
    clock: Clock,
    cipher: SecretCipher | None = None,
    dry_run: bool = False,
) -> tuple[BatchJob | None, Estimate]:
    """Read the file into a queued job and return it with its estimate; never commits.

    With ``dry_run`` the file is read and estimated but nothing is stored.
    Raises ``BatchAccountError``, ``InvalidWebhook`` or a ``BatchFileError``.
    Parsing runs in worker threads so the event loop keeps serving.
    """
    scene = Scene(request.scene)
    if scene not in SCENE_ACTIONS:
        raise ValueError(f"scene {scene.value!r} cannot be used for batch jobs")
    await _check_account(session, request.account_id)
    if request.webhook_url is not None and not dry_run:
        _check_webhook(request.webhook_url, request.webhook_secret, cipher)

    source = await asyncio.to_thread(
        open_source, request.path, limits=limits, filename=request.filename, column=request.column
    )
    intake = Intake(source, chunk_size=chunk_size)
    job = None
    if not dry_run:
        job = _new_job(request, scene, source.header, source.file_format.value, now=clock.now())
    if job is not None:
        session.add(job)
        await session.flush()

    batches = intake.batches()
    while (batch := await asyncio.to_thread(next, batches, None)) is not None:
        if job is not None:
            await _insert_batch(session, job.id, batch)

    estimate = await _estimate(session, request.account_id, intake.counts, scene, prices, clock)
    if job is None:
        return None, estimate

    _apply_counts(job, intake.counts, estimate)
    if request.webhook_url is not None and cipher is not None and request.webhook_secret:
        job.webhook_url = request.webhook_url
        job.webhook_secret_ciphertext = cipher.encrypt(
            request.webhook_secret, associated_data=webhook_associated_data(job.id)
        )
    if intake.counts.chunk_count == 0:
        # Nothing to query (every row invalid or the file had no valid number).
        job.state = JobState.COMPLETED.value
        job.started_at = job.finished_at = clock.now()
    await session.flush()
    return job, estimate


def webhook_associated_data(job_id: str) -> bytes:
    return WEBHOOK_SECRET_INFO + b":" + job_id.encode()


async def get_job(session: AsyncSession, job_id: str, *, account_id: str | None = None) -> BatchJob:
    """Return the job; raise ``JobNotFound`` when it is missing or belongs to another account."""
    job = await session.get(BatchJob, job_id, populate_existing=True)
    if job is None or (account_id is not None and job.account_id != account_id):
        raise JobNotFound(job_id)
    return job


async def list_jobs(
    session: AsyncSession, *, account_id: str | None = None, limit: int = 50
) -> list[BatchJob]:
    statement = select(BatchJob).order_by(BatchJob.created_at.desc(), BatchJob.id).limit(limit)
    if account_id is not None:
        statement = statement.where(BatchJob.account_id == account_id)
    return list((await session.scalars(statement)).all())


async def job_counts(session: AsyncSession, job_id: str) -> dict[str, dict[str, int]]:
    """Return counts over distinct numbers queried: {"status": {...}, "carrier": {...}}."""
    rows = await session.execute(
        select(BatchJobCount.key, BatchJobCount.count).where(BatchJobCount.job_id == job_id)
    )
    counts: dict[str, dict[str, int]] = {"status": {}, "carrier": {}}
    for key, count in rows:
        kind, _, value = key.partition(":")
        counts.setdefault(kind, {})[value] = count
    return counts


async def cancel_job(
    session: AsyncSession, job_id: str, *, clock: Clock, account_id: str | None = None
) -> BatchJob:
    """Stop a job: chunks not yet committed are never queried; answered rows keep their results."""
    return await _transition(
        session,
        job_id,
        account_id=account_id,
        action="cancel",
        allowed=(JobState.QUEUED, JobState.RUNNING, JobState.PAUSED),
        target=JobState.CANCELLED,
        clock=clock,
    )


async def pause_job(
    session: AsyncSession, job_id: str, *, clock: Clock, account_id: str | None = None
) -> BatchJob:
    return await _transition(
        session,
        job_id,
        account_id=account_id,
        action="pause",
        allowed=(JobState.QUEUED, JobState.RUNNING),
        target=JobState.PAUSED,
        clock=clock,
    )


async def resume_job(
    session: AsyncSession, job_id: str, *, clock: Clock, account_id: str | None = None
) -> BatchJob:
    return await _transition(
        session,
        job_id,
        account_id=account_id,
        action="resume",
        allowed=(JobState.PAUSED,),
        target=JobState.QUEUED,
        clock=clock,
    )


async def delete_account_jobs(session: AsyncSession, account_id: str) -> None:
    """Delete every batch job of an account with its rows and results (the arrears purge)."""
    job_ids = select(BatchJob.id).where(BatchJob.account_id == account_id).scalar_subquery()
    for table in (BatchJobCount, BatchChunk, BatchRowBlock):
        await session.execute(
            delete(table)
            .where(table.job_id.in_(job_ids))
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        delete(BatchJob)
        .where(BatchJob.account_id == account_id)
        .execution_options(synchronize_session=False)
    )


def job_as_dict(job: BatchJob, counts: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Return the job as the JSON object the CLI and console show."""
    payload: dict[str, Any] = {
        "JobId": job.id,
        "AccountId": job.account_id,
        "State": job.state,
        "StateReason": job.state_reason,
        "Scene": job.scene,
        "Action": job.action,
        "SourceName": job.source_name,
        "TotalRows": job.total_rows,
        "InvalidRows": job.invalid_rows,
        "DuplicateRows": job.duplicate_rows,
        "DistinctNumbers": job.distinct_numbers,
        "QueriedNumbers": job.queried_numbers,
        "BillableNumbers": job.billable_numbers,
        "Estimate": {
            "QuotaNumbers": job.estimate_quota_numbers,
            "ChargedNumbers": job.estimate_charged_numbers,
            "Amount": format_li(job.estimate_li),
        },
        "Webhook": job.webhook_url is not None,
        "CreatedAt": _iso(job.created_at),
        "StartedAt": _iso(job.started_at),
        "FinishedAt": _iso(job.finished_at),
    }
    if counts is not None:
        payload["ByStatus"] = counts.get("status", {})
        payload["ByCarrier"] = counts.get("carrier", {})
    return payload


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


async def _check_account(session: AsyncSession, account_id: str) -> None:
    if await session.get(Account, account_id) is None:
        raise BatchAccountError(account_id, "account not found")
    if not await is_feature_enabled(session, account_id):
        raise BatchAccountError(
            account_id, "the phone number status feature is not enabled; enable it first"
        )
    reason = await account_block_reason(session, account_id)
    if reason is not None:
        raise BatchAccountError(account_id, f"queries are suspended ({reason.value})")


def _check_webhook(url: str, secret: str | None, cipher: SecretCipher | None) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook(url, "expected an absolute http:// or https:// URL")
    if not secret or len(secret) < MIN_WEBHOOK_SECRET_CHARS:
        raise InvalidWebhook(
            url, f"a signing secret of at least {MIN_WEBHOOK_SECRET_CHARS} characters is required"
        )
    if cipher is None:
        raise InvalidWebhook(url, "webhooks need the service secret key to store the secret")


def _new_job(
    request: JobRequest,
    scene: Scene,
    header: Sequence[str] | None,
    source_format: str,
    *,
    now: datetime,
) -> BatchJob:
    return BatchJob(
        id=new_job_id(),
        account_id=request.account_id,
        state=JobState.QUEUED.value,
        scene=scene.value,
        action=SCENE_ACTIONS[scene],
        source_name=request.filename[:255],
        source_format=source_format,
        source_header=list(header) if header is not None else None,
        source_width=0,
        total_rows=0,
        invalid_rows=0,
        duplicate_rows=0,
        distinct_numbers=0,
        chunk_count=0,
        block_count=0,
        queried_numbers=0,
        billable_numbers=0,
        estimate_quota_numbers=0,
        estimate_charged_numbers=0,
        estimate_li=0,
        webhook_attempts=0,
        created_at=now,
    )


async def _insert_batch(session: AsyncSession, job_id: str, batch: IntakeBatch) -> None:
    if batch.blocks:
        await session.execute(
            insert(BatchRowBlock),
            [
                {"job_id": job_id, "block_no": block_no, "row_count": count, "payload": payload}
                for block_no, count, payload in batch.blocks
            ],
        )
    if batch.chunks:
        await session.execute(
            insert(BatchChunk),
            [
                {"job_id": job_id, "chunk_no": chunk_no, "state": "pending", "numbers": numbers}
                for chunk_no, numbers in batch.chunks
            ],
        )


async def _estimate(
    session: AsyncSession,
    account_id: str,
    counts: IntakeCounts,
    scene: Scene,
    prices: PriceList,
    clock: Clock,
) -> Estimate:
    quota = await quota_summary(session, account_id, clock=clock)
    quota_numbers = min(quota.remaining, counts.distinct_numbers)
    charged = counts.distinct_numbers - quota_numbers
    unit_price_li = prices.unit_price_li(SCENE_ACTIONS[scene])
    return Estimate(
        total_rows=counts.total_rows,
        invalid_rows=counts.invalid_rows,
        duplicate_rows=counts.duplicate_rows,
        distinct_numbers=counts.distinct_numbers,
        quota_numbers=quota_numbers,
        charged_numbers=charged,
        unit_price_li=unit_price_li,
        amount_li=charged * unit_price_li,
    )


def _apply_counts(job: BatchJob, counts: IntakeCounts, estimate: Estimate) -> None:
    job.total_rows = counts.total_rows
    job.invalid_rows = counts.invalid_rows
    job.duplicate_rows = counts.duplicate_rows
    job.distinct_numbers = counts.distinct_numbers
    job.chunk_count = counts.chunk_count
    job.block_count = counts.block_count
    job.source_width = counts.source_width
    job.estimate_quota_numbers = estimate.quota_numbers
    job.estimate_charged_numbers = estimate.charged_numbers
    job.estimate_li = estimate.amount_li


async def _transition(
    session: AsyncSession,
    job_id: str,
    *,
    account_id: str | None,
    action: str,
    allowed: tuple[JobState, ...],
    target: JobState,
    clock: Clock,
) -> BatchJob:
    job = await get_job(session, job_id, account_id=account_id)
    # The guarded UPDATE keeps a worker's concurrent completion from being overwritten.
    values: dict[str, Any] = {"state": target.value, "state_reason": None}
    if target.is_final:
        values["finished_at"] = clock.now()
    result = await session.execute(
        update(BatchJob)
        .where(BatchJob.id == job_id, BatchJob.state.in_([state.value for state in allowed]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = await get_job(session, job_id)
        raise JobStateError(job_id, current.state, action)
    return await get_job(session, job.id)


# The arrears purge deletes batch jobs in its own transaction, like query records.
register_purge_hook(delete_account_jobs)
