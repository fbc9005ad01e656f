"""External boundaries of billing: payment providers and notifiers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PaymentReceipt:
    """A confirmed incoming payment: ``channel`` and the provider's reference."""

    channel: str
    reference: str | None
    amount_li: int


class PaymentProvider(Protocol):
    """Confirms money received for a recharge before the ledger is credited."""

    async def confirm(
        self, *, account_id: str, amount_li: int, channel: str, reference: str | None
    ) -> PaymentReceipt:
        """Return the receipt of a completed payment; raise ``BillingError`` if it did not happen."""
        ...


@dataclass(frozen=True, slots=True)
class NotificationMessage:
    account_id: str
    kind: str
    subject: str
    body: str
    email: str | None
    phone: str | None


class Notifier(Protocol):
    """Delivers one billing notification; raising marks the delivery failed (it is not retried)."""

    async def send(self, message: NotificationMessage) -> None: ...
