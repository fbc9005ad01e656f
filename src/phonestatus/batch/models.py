"""Tables of the batch package (created by migration ``0003_batch``).

A job's rows are stored in blocks of up to ``ROWS_PER_BLOCK`` rows, each one
compressed JSON payload, so a million-row file is a thousand inserts instead
of a million. The work is the job's distinct valid numbers, split into chunks
in order of first appearance. A worker claims one chunk, queries its numbers
and, in one transaction, stores the results, marks the chunk done and records
the billing of each number. A crash before that commit leaves the chunk
pending, so it is queried again and billed exactly once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from phonestatus.storage import Base

ROWS_PER_BLOCK = 1000


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


# States whose pending chunks a worker may claim.
CLAIMABLE_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)


class ChunkState(StrEnum):
    PENDING = "pending"
    DONE = "done"


class BatchJob(Base):
    __tablename__ = "batch_jobs"

    id: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(sa.String(16), default=JobState.QUEUED.value)
    # Why the job is paused or failed, in plain words; None otherwise.
    state_reason: Mapped[str | None] = mapped_column(sa.String(500))
    scene: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))

    source_name: Mapped[str] = mapped_column(sa.String(255))
    source_format: Mapped[str] = mapped_column(sa.String(8))
    source_header: Mapped[list[str] | None] = mapped_column(sa.JSON)
    source_width: Mapped[int]

    total_rows: Mapped[int]
    invalid_rows: Mapped[int]
    duplicate_rows: Mapped[int]
    distinct_numbers: Mapped[int]
    chunk_count: Mapped[int]
    block_count: Mapped[int]
    # Progress, raised by each committed chunk.
    queried_numbers: Mapped[int] = mapped_column(default=0)
    billable_numbers: Mapped[int] = mapped_column(default=0)

    # Cost estimate at creation: every distinct valid number billable, package quota first.
    estimate_quota_numbers: Mapped[int]
    estimate_charged_numbers: Mapped[int]
    estimate_li: Mapped[int] = mapped_column(sa.BigInteger)  # 0.001 CNY

    webhook_url: Mapped[str | None] = mapped_column(sa.String(2000))
    # AES-GCM ciphertext of the account-chosen HMAC key, bound to the job id.
    webhook_secret_ciphertext: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    webhook_delivered_at: Mapped[datetime | None]

    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)


class BatchRowBlock(Base):
    """Up to ``ROWS_PER_BLOCK`` source rows in file order, as zlib-compressed JSON."""

    __tablename__ = "batch_row_blocks"

    job_id: Mapped[str] = mapped_column(
        sa.ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    block_no: Mapped[int] = mapped_column(primary_key=True)
    row_count: Mapped[int]
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)


class BatchChunk(Base):
    """Distinct numbers of a job that one worker queries and commits together."""

    __tablename__ = "batch_chunks"
    __table_args__ = (sa.Index("ix_batch_chunks_job_id_state", "job_id", "state"),)

    job_id: Mapped[str] = mapped_column(
        sa.ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_no: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16), default=ChunkState.PENDING.value)
    # The numbers as one string of 11-digit groups.
    numbers: Mapped[str] = mapped_column(sa.Text)
    # JSON list of NumberResult.to_list() values, parallel to `numbers`; None until done.
    results: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(sa.String(64))
    completed_at: Mapped[datetime | None]


class BatchJobCount(Base):
    """Per-job counters keyed "status:NORMAL" or "carrier:CMCC", over distinct numbers queried."""

    __tablename__ = "batch_job_counts"

    job_id: Mapped[str] = mapped_column(
        sa.ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(48), primary_key=True)
    count: Mapped[int]
