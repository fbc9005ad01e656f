from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.billing.models import Notification
from phonestatus.billing.notify import (
    CompositeNotifier,
    LogNotifier,
    SmtpNotifier,
    WebhookNotifier,
    deliver_pending,
    notifier_from_settings,
    queue_notification,
)
from phonestatus.billing.protocols import NotificationMessage
from phonestatus.clock import FrozenClock
from phonestatus.settings import Settings

from .factories import RecordingNotifier, make_account

MESSAGE = NotificationMessage(
    account_id="acc_0123456789abcdef",
    kind="arrears",
    subject="phonestatus: account suspended for arrears",
    body="The balance is -0.050 CNY.",
    email="owner@example.com",
    phone="13800138000",
)


class _WebhookHandler(BaseHTTPRequestHandler):
    received: list[dict[str, str]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []
    handler = type("Handler", (_WebhookHandler,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that keeps each message's envelope and data."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recipients: list[str] = []

        async def reply(line: str) -> None:
            writer.write((line + "\r\n").encode())
            await writer.drain()

        await reply("220 sink ready")
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await reply("250 sink")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip(" <>"))
                await reply("250 ok")
            elif verb == "DATA":
                await reply("354 end with .")
                data = (await reader.readuntil(b"\r\n.\r\n")).decode()
                self.messages.append((recipients, data))
                await reply("250 queued")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("250 ok")
        writer.close()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = await sink.start()
    try:
        yield sink, port
    finally:
        await sink.stop()


class TestWebhookNotifier:
    async def test_send_posts_json(self, webhook_server: tuple[str, list[dict[str, str]]]) -> None:
        url, received = webhook_server

        await WebhookNotifier(url).send(MESSAGE)

        assert received == [
            {
                "AccountId": MESSAGE.account_id,
                "Kind": "arrears",
                "Subject": MESSAGE.subject,
                "Body": MESSAGE.body,
            }
        ]


class TestSmtpNotifier:
    async def test_send_emails_account_address(self, smtp_sink: tuple[SmtpSink, int]) -> None:
        sink, port = smtp_sink

        await SmtpNotifier("127.0.0.1", port, sender="billing@phonestatus.test").send(MESSAGE)

        recipients, data = sink.messages[0]
        assert recipients == ["owner@example.com"]
        assert "Subject: phonestatus: account suspended for arrears" in data
        assert "The balance is -0.050 CNY." in data

    async def test_send_without_email_skips(self, smtp_sink: tuple[SmtpSink, int]) -> None:
        sink, port = smtp_sink
        message = NotificationMessage(**{**_fields(MESSAGE), "email": None})

        await SmtpNotifier("127.0.0.1", port, sender="billing@phonestatus.test").send(message)

        assert sink.messages == []


def _fields(message: NotificationMessage) -> dict[str, str | None]:
    return {name: getattr(message, name) for name in NotificationMessage.__slots__}


class TestCompositeNotifier:
    async def test_send_tries_every_channel_then_raises(self) -> None:
        failing = RecordingNotifier(fail=True)
        working = RecordingNotifier()

        with pytest.raises(ConnectionError):
            await CompositeNotifier([failing, LogNotifier(), working]).send(MESSAGE)

        assert working.sent == [MESSAGE]


class TestDeliverPending:
    async def test_queue_notification_same_key_once(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        key = f"test:{account_id}"

        async with session_factory() as session:
            first = await queue_notification(
                session, account_id, kind="test", dedupe_key=key, subject="s", body="b", clock=clock
            )
            second = await queue_notification(
                session, account_id, kind="test", dedupe_key=key, subject="s", body="b", clock=clock
            )
            await session.commit()

        assert (first, second) == (True, False)

    async def test_deliver_pending_sends_each_once(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        notifier = RecordingNotifier()
        async with session_factory() as session:
            await queue_notification(
                session,
                account_id,
                kind="test",
                dedupe_key=f"once:{account_id}",
                subject="s",
                body="b",
                clock=clock,
            )
            await session.commit()

        await asyncio.gather(
            deliver_pending(session_factory, notifier, clock=clock),
            deliver_pending(session_factory, notifier, clock=clock),
        )
        await deliver_pending(session_factory, notifier, clock=clock)

        assert notifier.kinds(account_id) == ["test"]
        assert notifier.sent[0].email == "billing@example.com"

    async def test_deliver_pending_failure_recorded(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        account_id = await make_account(session_factory, clock=clock)
        async with session_factory() as session:
            await queue_notification(
                session,
                account_id,
                kind="test",
                dedupe_key=f"fails:{account_id}",
                subject="s",
                body="b",
                clock=clock,
            )
            await session.commit()

        await deliver_pending(session_factory, RecordingNotifier(fail=True), clock=clock)

        async with session_factory() as session:
            row = await session.scalar(
                select(Notification).where(Notification.dedupe_key == f"fails:{account_id}")
            )
        assert row is not None
        assert row.sent_at == clock.now()
        assert row.error == "channel is down"


class TestNotifierFromSettings:
    def test_notifier_from_settings_adds_configured_channels(
        self, settings_factory: Callable[..., Settings]
    ) -> None:
        settings = settings_factory(
            notify_webhook_url="http://127.0.0.1:9/hook", notify_smtp_host="127.0.0.1"
        )

        notifier = notifier_from_settings(settings)

        assert isinstance(notifier, CompositeNotifier)
        assert [type(channel) for channel in notifier.notifiers] == [
            LogNotifier,
            WebhookNotifier,
            SmtpNotifier,
        ]
