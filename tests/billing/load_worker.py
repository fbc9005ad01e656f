"""A separate process that records billable queries, for the concurrency and crash tests.

Usage: python load_worker.py DATABASE_URL ACCOUNT_ID PREFIX COUNT CONCURRENCY [GROUP]

Records COUNT billable queries with request ids PREFIX-0 ..., CONCURRENCY
transactions at a time, and prints each request id on stdout right after its
transaction commits. COUNT 0 means run until killed. With GROUP above 1 each
transaction records GROUP queries through ``record_queries``; otherwise one
through ``record_query``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime

from phonestatus.billing.batching import record_queries
from phonestatus.billing.metering import QueryUsage, record_query
from phonestatus.billing.prices import PriceList
from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, create_session_factory

PRICES = PriceList()
MAX_ATTEMPTS = 20


def _usage(account_id: str, request_id: str) -> QueryUsage:
    return QueryUsage(
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


async def main(
    url: str, account_id: str, prefix: str, count: int, concurrency: int, group: int
) -> None:
    engine = create_engine(to_async_url(url))
    session_factory = create_session_factory(engine)
    numbers = itertools.count() if count == 0 else iter(range(count))

    async def record(request_ids: list[str]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with session_factory() as session:
                    usages = [_usage(account_id, request_id) for request_id in request_ids]
                    if group > 1:
                        await record_queries(session, usages, prices=PRICES)
                    else:
                        await record_query(session, usages[0], prices=PRICES)
                    await session.commit()
            except Exception as exc:  # a lost lock race rolls back; the same ids are retried
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                print(f"retry {request_ids[0]}: {exc!r}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.05)
                continue
            sys.stdout.write("".join(request_id + "\n" for request_id in request_ids))
            sys.stdout.flush()
            return

    async def lane() -> None:
        while batch := [f"{prefix}-{number}" for number in itertools.islice(numbers, group)]:
            await record(batch)

    try:
        await asyncio.gather(*(lane() for _ in range(concurrency)))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, account_id, prefix, count, concurrency = sys.argv[1:6]
    group = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    asyncio.run(main(url, account_id, prefix, int(count), int(concurrency), group))
