"""Batch jobs, their row blocks, chunks of distinct numbers and counters.

Revision ID: 0003_batch
Revises: 0002_billing
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from phonestatus.storage.db import UTCDateTime

revision: str = "0003_batch"
down_revision: str | None = "0002_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("account_id", sa.String(20), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.String(500), nullable=True),
        sa.Column("scene", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("source_name", sa.String(255), nullable=False),
        sa.Column("source_format", sa.String(8), nullable=False),
        sa.Column("source_header", sa.JSON(), nullable=True),
        sa.Column("source_width", sa.Integer(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("invalid_rows", sa.Integer(), nullable=False),
        sa.Column("duplicate_rows", sa.Integer(), nullable=False),
        sa.Column("distinct_numbers", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("block_count", sa.Integer(), nullable=False),
        sa.Column("queried_numbers", sa.Integer(), nullable=False),
        sa.Column("billable_numbers", sa.Integer(), nullable=False),
        sa.Column("estimate_quota_numbers", sa.Integer(), nullable=False),
        sa.Column("estimate_charged_numbers", sa.Integer(), nullable=False),
        sa.Column("estimate_li", sa.BigInteger(), nullable=False),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_batch_jobs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_jobs")),
    )
    op.create_index(op.f("ix_batch_jobs_account_id"), "batch_jobs", ["account_id"])

    op.create_table(
        "batch_row_blocks",
        sa.Column("job_id", sa.String(24), nullable=False),
        sa.Column("block_no", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_row_blocks_job_id_batch_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "block_no", name=op.f("pk_batch_row_blocks")),
    )

    op.create_table(
        "batch_chunks",
        sa.Column("job_id", sa.String(24), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("numbers", sa.Text(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("completed_by", sa.String(64), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_chunks_job_id_batch_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk_no", name=op.f("pk_batch_chunks")),
    )
    op.create_index("ix_batch_chunks_job_id_state", "batch_chunks", ["job_id", "state"])

    op.create_table(
        "batch_job_counts",
        sa.Column("job_id", sa.String(24), nullable=False),
        sa.Column("key", sa.String(48), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["batch_jobs.id"],
            name=op.f("fk_batch_job_counts_job_id_batch_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "key", name=op.f("pk_batch_job_counts")),
    )


def downgrade() -> None:
    op.drop_table("batch_job_counts")
    op.drop_index("ix_batch_chunks_job_id_state", table_name="batch_chunks")
    op.drop_table("batch_chunks")
    op.drop_table("batch_row_blocks")
    op.drop_index(op.f("ix_batch_jobs_account_id"), table_name="batch_jobs")
    op.drop_table("batch_jobs")
