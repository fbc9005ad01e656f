"""A separate process that records billable queries, for the concurrency and crash tests.

Usage: python load_worker.py DATABASE_URL ACCOUNT_ID PREFIX COUNT CONCURRENCY

Records COUNT billable queries with request ids PREFIX-0 ... in COUNT
separate transactions, CONCURRENCY at a time, and prints each request id on
stdout right after its transaction commits. COUNT 0 means run until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime

from phonestatus.billing.metering import QueryUsage, record_query
from phonestatus.billing.prices import PriceList
from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, create_session_factory

PRICES = PriceList()
MAX_ATTEMPTS = 20


async def main(url: str, account_id: str, prefix: str, count: int, concurrency: int) -> None:
    engine = create_engine(to_async_url(url))
    session_factory = create_session_factory(engine)
    numbers = itertools.count() if count == 0 else iter(range(count))

    async def record(request_id: str) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with session_factory() as session:
                    usage = QueryUsage(
                        account_id=account_id,
                        action="PhoneNumberStatusForReal",
                        request_id=request_id,
                        code="OK",
                        status="NORMAL",
                        billable=True,
                        masked_number="138****8000",
                        carrier="CMCC",
                        connector="simulated",
                        latency_ms=1,
                        source="api",
                        occurred_at=datetime.now(UTC),
                    )
                    await record_query(session, usage, prices=PRICES)
                    await session.commit()
            except Exception as exc:  # a lost lock race rolls back; the same id is retried
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                print(f"retry {request_id}: {exc!r}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.05)
                continue
            sys.stdout.write(request_id + "\n")
            sys.stdout.flush()
            return

    async def lane() -> None:
        for number in numbers:
            await record(f"{prefix}-{number}")

    try:
        await asyncio.gather(*(lane() for _ in range(concurrency)))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, account_id, prefix, count, concurrency = sys.argv[1:6]
    asyncio.run(main(url, account_id, prefix, int(count), int(concurrency)))
