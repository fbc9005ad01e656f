"""Job-completion webhooks, signed with HMAC-SHA256 under a secret the account chose.

The request is a JSON POST with two headers:

- ``X-Phonestatus-Timestamp``: Unix seconds when it was signed;
- ``X-Phonestatus-Signature``: ``sha256=`` and the hex HMAC-SHA256 of
  ``<timestamp>.<body>`` keyed with the secret.

A receiver recomputes the HMAC over the raw body, compares it in constant
time and rejects old timestamps. Delivery is at least once: a worker that
crashes after sending but before recording the delivery sends it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.crypto import DecryptionError, SecretCipher
from phonestatus.batch.models import BatchJob, JobState
from phonestatus.batch.service import job_as_dict, job_counts, webhook_associated_data
from phonestatus.clock import Clock

log = structlog.get_logger(__name__)

TIMESTAMP_HEADER = "X-Phonestatus-Timestamp"
SIGNATURE_HEADER = "X-Phonestatus-Signature"
MAX_ATTEMPTS = 5
# Attempt n (counting from 0) waits FIRST_RETRY * (2**n - 1) after the job finished.
FIRST_RETRY = timedelta(seconds=5)
# Completed, failed and cancelled jobs all notify.
FINAL_STATES = [state.value for state in JobState if state.is_final]


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value for ``body`` signed at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign_payload(secret, timestamp, body), signature)


class WebhookSender:
    """Delivers completion webhooks of finished jobs that have one configured."""

    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        cipher: SecretCipher,
        clock: Clock,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._cipher = cipher
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._transport = transport

    async def deliver_due(self) -> int:
        """Send every webhook whose next attempt is due; return how many were delivered."""
        now = self._clock.now()
        async with self._session_factory() as session:
            jobs = list(
                (
                    await session.scalars(
                        select(BatchJob).where(
                            BatchJob.webhook_url.is_not(None),
                            BatchJob.webhook_delivered_at.is_(None),
                            BatchJob.webhook_attempts < MAX_ATTEMPTS,
                            BatchJob.state.in_(FINAL_STATES),
                        )
                    )
                ).all()
            )
            due = [job for job in jobs if _next_attempt_at(job) <= now]
            payloads = [(job, await self._payload(session, job)) for job in due]

        delivered = 0
        for job, body in payloads:
            if await self.deliver(job, body):
                delivered += 1
        return delivered

    async def deliver(self, job: BatchJob, body: bytes) -> bool:
        ok = await self._post(job, body)
        async with self._session_factory() as session, session.begin():
            values: dict[str, Any] = {"webhook_attempts": BatchJob.webhook_attempts + 1}
            if ok:
                values["webhook_delivered_at"] = self._clock.now()
            await session.execute(update(BatchJob).where(BatchJob.id == job.id).values(**values))
        return ok

    async def _payload(self, session: AsyncSession, job: BatchJob) -> bytes:
        payload = {
            "Event": "batch.job.finished",
            "Job": job_as_dict(job, await job_counts(session, job.id)),
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def _post(self, job: BatchJob, body: bytes) -> bool:
        if job.webhook_url is None or job.webhook_secret_ciphertext is None:
            return False
        try:
            secret = self._cipher.decrypt(
                job.webhook_secret_ciphertext, associated_data=webhook_associated_data(job.id)
            )
        except DecryptionError:
            log.error("batch_webhook_secret_unreadable", job_id=job.id)
            return False

        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign_payload(secret, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout_seconds, transport=self._transport, follow_redirects=False
            ) as client:
                response = await client.post(job.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("batch_webhook_failed", job_id=job.id, error=type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("batch_webhook_rejected", job_id=job.id, status_code=response.status_code)
            return False
        log.info("batch_webhook_delivered", job_id=job.id)
        return True


def _next_attempt_at(job: BatchJob) -> Any:
    finished = job.finished_at or job.created_at
    return finished + FIRST_RETRY * (2**job.webhook_attempts - 1)
