"""Injectable clocks, so billing cycles, expiry and purges can be tested at any date.

Every clock returns aware UTC datetimes. Domain code receives a clock
keyword-only and never calls ``datetime.now()`` itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that returns a fixed time until a test advances it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"FrozenClock needs an aware datetime, got naive {start!r}")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"FrozenClock needs an aware datetime, got naive {moment!r}")
        self._now = moment.astimezone(UTC)
