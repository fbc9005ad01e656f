"""Payment providers for recharges.

``OfflinePaymentProvider`` records a payment the operator has already seen
arrive: a bank transfer, cash, or a third-party payment identified by its
reference. It validates the input and trusts the operator. Online providers
that verify a payment with the payment service will implement the same
``PaymentProvider`` protocol.
"""

from __future__ import annotations

from phonestatus.billing.errors import InvalidAmount
from phonestatus.billing.models import PaymentChannel
from phonestatus.billing.protocols import PaymentReceipt

MAX_REFERENCE_LENGTH = 128


class OfflinePaymentProvider:
    async def confirm(
        self, *, account_id: str, amount_li: int, channel: str, reference: str | None
    ) -> PaymentReceipt:
        if amount_li <= 0:
            raise InvalidAmount(amount_li, "a payment must be greater than zero")
        try:
            known = PaymentChannel(channel)
        except ValueError:
            choices = ", ".join(c.value for c in PaymentChannel if c is not PaymentChannel.BALANCE)
            raise ValueError(
                f"unknown payment channel {channel!r}; expected one of {choices}"
            ) from None
        if known is PaymentChannel.BALANCE:
            raise ValueError("a recharge cannot be paid from the balance it credits")
        if known is not PaymentChannel.OFFLINE and not reference:
            raise ValueError(f"a payment through {channel!r} needs its payment reference")
        if reference is not None and len(reference) > MAX_REFERENCE_LENGTH:
            raise ValueError(f"payment reference is longer than {MAX_REFERENCE_LENGTH} characters")
        return PaymentReceipt(channel=known.value, reference=reference, amount_li=amount_li)
