from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.batch.service import JobRequest, create_job, get_job
from phonestatus.batch.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    sign_payload,
    verify_signature,
)
from phonestatus.batch.worker import BatchWorker
from phonestatus.billing import PriceList
from phonestatus.clock import FrozenClock

from .conftest import CLOCK, LIMITS, write_numbers

SECRET = "account-chosen-secret-0001"
KEY = b"service-secret-key-for-tests-0123456789"
# HMAC-SHA256 of "1700000000.{}" under SECRET, computed with
# `printf '1700000000.{}' | openssl dgst -sha256 -hmac account-chosen-secret-0001`.
KNOWN_SIGNATURE = "sha256=dcdde33f5ae6186ba0885de59c9ad8b5016fbcc742173649868dc841e5a730fd"


class RecordingReceiver:
    """A fake webhook receiver: records requests and answers with a fixed status."""

    def __init__(self, status_code: int = 200) -> None:
        self.status_code = status_code
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status_code)


class TestSignature:
    def test_sign_payload_known_answer(self) -> None:
        assert sign_payload(SECRET, 1700000000, b"{}") == KNOWN_SIGNATURE

    def test_verify_signature_accepts_own(self) -> None:
        assert verify_signature(SECRET, 1700000000, b"{}", KNOWN_SIGNATURE)

    def test_verify_signature_rejects_other_body(self) -> None:
        assert not verify_signature(SECRET, 1700000000, b"{ }", KNOWN_SIGNATURE)

    def test_verify_signature_rejects_other_timestamp(self) -> None:
        assert not verify_signature(SECRET, 1700000001, b"{}", KNOWN_SIGNATURE)


class TestWebhookSender:
    async def test_completed_job_posts_signed_notice(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        cipher = SecretCipher(KEY)
        async with session_factory() as session, session.begin():
            job, _ = await create_job(
                session,
                JobRequest(
                    account_id=account_id,
                    path=write_numbers(tmp_path / "a.csv", ["13800138000", "13912345678"]),
                    filename="a.csv",
                    webhook_url="http://127.0.0.1:9/hook",
                    webhook_secret=SECRET,
                ),
                limits=LIMITS,
                chunk_size=10,
                prices=PriceList(),
                clock=CLOCK,
                cipher=cipher,
            )
            assert job is not None
            job_id = job.id
        receiver = RecordingReceiver()
        sender = WebhookSender(
            session_factory=session_factory,
            cipher=cipher,
            clock=CLOCK,
            timeout_seconds=1,
            transport=httpx.MockTransport(receiver),
        )

        await make_worker(webhooks=sender).run_until_idle(job_id)

        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        timestamp = int(request.headers[TIMESTAMP_HEADER])
        assert verify_signature(
            SECRET, timestamp, request.content, request.headers[SIGNATURE_HEADER]
        )
        body = json.loads(request.content)
        assert body["Job"]["JobId"] == job_id
        assert body["Job"]["State"] == "completed"
        async with session_factory() as session:
            stored = await get_job(session, job_id)
        assert stored.webhook_delivered_at is not None
        assert SECRET.encode() not in (stored.webhook_secret_ciphertext or b"")

    async def test_rejected_delivery_retried_later(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        account_id: str,
        make_worker: Callable[..., BatchWorker],
        tmp_path: Path,
    ) -> None:
        cipher = SecretCipher(KEY)
        async with session_factory() as session, session.begin():
            job, _ = await create_job(
                session,
                JobRequest(
                    account_id=account_id,
                    path=write_numbers(tmp_path / "a.csv", ["13800138000"]),
                    filename="a.csv",
                    webhook_url="http://127.0.0.1:9/hook",
                    webhook_secret=SECRET,
                ),
                limits=LIMITS,
                chunk_size=10,
                prices=PriceList(),
                clock=CLOCK,
                cipher=cipher,
            )
            assert job is not None
            job_id = job.id
        await make_worker().run_until_idle(job_id)
        clock = FrozenClock(datetime.now(UTC))
        receiver = RecordingReceiver(status_code=500)
        sender = WebhookSender(
            session_factory=session_factory,
            cipher=cipher,
            clock=clock,
            timeout_seconds=1,
            transport=httpx.MockTransport(receiver),
        )

        first = await sender.deliver_due()
        too_soon = await sender.deliver_due()
        clock.advance(timedelta(seconds=6))
        receiver.status_code = 204
        retried = await sender.deliver_due()

        assert (first, too_soon, retried) == (0, 0, 1)
        assert len(receiver.requests) == 2
