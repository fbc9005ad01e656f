"""Money in integer li: 1 li = 0.001 CNY, the precision unit prices carry.

Amounts never pass through binary floating point. Text such as ``"100"``,
``"100.5"`` or ``"0.001"`` parses exactly; more than three decimals or a
``float`` argument raises ``InvalidAmount``.

Rounding happens once per bill: a bill's exact total in li is rounded half-up
to whole fen (0.01 CNY, 10 li) and that rounded amount is deducted. Individual
queries and bill lines are never rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal

from phonestatus.billing.errors import InvalidAmount

LI_PER_CNY = 1000
LI_PER_FEN = 10

# Capped length so pathological input never reaches the regular expression.
MAX_AMOUNT_TEXT_LENGTH = 32
_AMOUNT_PATTERN = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def parse_cny(value: str | int | Decimal, *, allow_negative: bool = False) -> int:
    """Parse a CNY amount (``"100.5"``, ``100``, ``Decimal("0.001")``) into li.

    Raises ``InvalidAmount`` for floats, more than three decimals, malformed
    text, and negative amounts unless ``allow_negative``.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount(value, "pass the amount as text or Decimal, not a float")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount(value, "the amount must be a finite number")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidAmount(value, "expected text such as '100.5'")

    if len(text) > MAX_AMOUNT_TEXT_LENGTH:
        raise InvalidAmount(value, f"the amount is longer than {MAX_AMOUNT_TEXT_LENGTH} characters")
    match = _AMOUNT_PATTERN.fullmatch(text)
    if match is None:
        raise InvalidAmount(value, "expected digits with an optional '.' and up to 3 decimals")
    fraction = match.group("fraction") or ""
    if isinstance(value, Decimal):
        # Decimal("1.500") carries its precision, not the caller's intent.
        fraction = fraction.rstrip("0")
    if len(fraction) > 3:
        raise InvalidAmount(value, "amounts carry at most 3 decimals (0.001 CNY)")

    li = int(match.group("whole")) * LI_PER_CNY + int(fraction.ljust(3, "0"))
    if match.group("sign"):
        li = -li
    if li < 0 and not allow_negative:
        raise InvalidAmount(value, "the amount must not be negative")
    return li


def format_cny(li: int) -> str:
    """Format li as CNY with exactly three decimals: 100000 -> ``"100.000"``."""
    sign = "-" if li < 0 else ""
    whole, fraction = divmod(abs(li), LI_PER_CNY)
    return f"{sign}{whole}.{fraction:03d}"


def to_decimal(li: int) -> Decimal:
    """Return li as an exact CNY ``Decimal`` with three places."""
    return Decimal(li).scaleb(-3)


def round_half_up_to_fen(li: int) -> int:
    """Round li to whole fen (multiples of 10 li), halves away from zero."""
    sign = -1 if li < 0 else 1
    fen, remainder = divmod(abs(li), LI_PER_FEN)
    if remainder * 2 >= LI_PER_FEN:
        fen += 1
    return sign * fen * LI_PER_FEN
