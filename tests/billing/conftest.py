from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phonestatus.clock import FrozenClock

# A Tuesday, 10:17 UTC: mid-cycle, mid-month.
START = datetime(2026, 3, 10, 10, 17, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)
