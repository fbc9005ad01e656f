"""Billing notifications: queued in the transaction that causes them, delivered after commit.

Each event has a dedupe key (``arrears:<account>:<since>``,
``low_balance:<account>:<recharge>``, ...) that is unique in the table, so an
event is queued at most once however many settlement runs see it. Delivery
claims a row (sets ``sent_at``) and commits before sending, so a crash or a
failing channel loses a message rather than sending it twice: at most once.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx
import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.models import Account
from phonestatus.billing.models import Notification
from phonestatus.billing.protocols import NotificationMessage, Notifier
from phonestatus.clock import Clock

if TYPE_CHECKING:
    from phonestatus.settings import Settings

log = structlog.get_logger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0
SMTP_TIMEOUT_SECONDS = 10.0


async def queue_notification(
    session: AsyncSession,
    account_id: str,
    *,
    kind: str,
    dedupe_key: str,
    subject: str,
    body: str,
    clock: Clock,
) -> bool:
    """Queue a notification unless one with ``dedupe_key`` exists; return whether it was queued."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(Notification)
        .values(
            account_id=account_id,
            kind=kind,
            dedupe_key=dedupe_key,
            subject=subject,
            body=body,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notification.id)
    )
    return result.scalar_one_or_none() is not None


async def deliver_pending(
    session_factory: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    *,
    clock: Clock,
    limit: int = 100,
) -> int:
    """Send queued notifications, each at most once; return how many were sent successfully."""
    async with session_factory() as session:
        pending = (
            await session.scalars(
                select(Notification.id)
                .where(Notification.sent_at.is_(None))
                .order_by(Notification.id)
                .limit(limit)
            )
        ).all()

    sent = 0
    for notification_id in pending:
        async with session_factory() as session:
            claimed = await session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.sent_at.is_(None))
                .values(sent_at=clock.now())
                .returning(Notification.account_id, Notification.kind)
                .execution_options(synchronize_session=False)
            )
            row = claimed.one_or_none()
            if row is None:
                await session.rollback()
                continue
            notification = await session.get(Notification, notification_id)
            account = await session.get(Account, row.account_id)
            await session.commit()
        assert notification is not None
        message = NotificationMessage(
            account_id=notification.account_id,
            kind=notification.kind,
            subject=notification.subject,
            body=notification.body,
            email=account.email if account is not None else None,
            phone=account.phone if account is not None else None,
        )
        try:
            await notifier.send(message)
        except Exception as exc:
            # Delivery is at most once, so the failure is recorded, logged and not retried.
            log.warning(
                "billing.notification_failed",
                notification_id=notification_id,
                account_id=message.account_id,
                kind=message.kind,
                error=str(exc),
            )
            async with session_factory() as session:
                await session.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(error=str(exc)[:2000])
                )
                await session.commit()
            continue
        sent += 1
    return sent


class LogNotifier:
    """Writes each notification to the service log."""

    async def send(self, message: NotificationMessage) -> None:
        log.info(
            "billing.notification",
            account_id=message.account_id,
            kind=message.kind,
            subject=message.subject,
        )


class WebhookNotifier:
    """POSTs each notification as JSON to one operator-configured URL."""

    def __init__(self, url: str, *, timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds

    async def send(self, message: NotificationMessage) -> None:
        payload = {
            "AccountId": message.account_id,
            "Kind": message.kind,
            "Subject": message.subject,
            "Body": message.body,
        }
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
            response = await client.post(self.url, json=payload)
            response.raise_for_status()


class SmtpNotifier:
    """Emails each notification to the account's address; accounts without one are skipped."""

    def __init__(
        self, host: str, port: int, *, sender: str, timeout_seconds: float = SMTP_TIMEOUT_SECONDS
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_seconds = timeout_seconds

    async def send(self, message: NotificationMessage) -> None:
        if not message.email:
            return
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.email
        email["Subject"] = message.subject
        email.set_content(message.body)
        await asyncio.to_thread(self._send_blocking, email)

    def _send_blocking(self, email: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as client:
            client.send_message(email)


class CompositeNotifier:
    """Sends through every channel; raises the first failure after trying them all."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = tuple(notifiers)

    async def send(self, message: NotificationMessage) -> None:
        first_error: Exception | None = None
        for notifier in self.notifiers:
            try:
                await notifier.send(message)
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


def notifier_from_settings(settings: Settings) -> Notifier:
    """Build the log notifier plus the webhook and SMTP channels the settings configure."""
    notifiers: list[Notifier] = [LogNotifier()]
    if settings.notify_webhook_url:
        notifiers.append(WebhookNotifier(settings.notify_webhook_url))
    if settings.notify_smtp_host:
        notifiers.append(
            SmtpNotifier(
                settings.notify_smtp_host,
                settings.notify_smtp_port,
                sender=settings.notify_smtp_sender,
            )
        )
    return CompositeNotifier(notifiers)
