"""Metering benchmark: ``record_query`` throughput on SQLite and PostgreSQL.

Run: .venv/bin/python bench/billing_bench.py [--queries 3000] [--lanes 16]
     [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Each query is its own transaction (insert the record, charge it, commit), as
the gateway does it. Three cases per database, on a fresh database each:

- ``not billable``: the query record only, the cost metering adds to any query;
- ``pay-as-you-go``: billable, no package, so a usage event at the unit price;
- ``package``: billable against one package large enough for the run, so
  every query also decrements the same package row, which serializes them.

It prints queries/s per case and the ratio of each billable case to the
``not billable`` one.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from phonestatus.accounts.service import create_account
from phonestatus.billing.metering import QueryUsage, record_query
from phonestatus.billing.packages import buy_package, set_package_type
from phonestatus.billing.prices import PriceList
from phonestatus.clock import SystemClock
from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, create_session_factory, upgrade_database

CLOCK = SystemClock()
PRICES = PriceList()


async def _prepare(url: str, *, package_quota: int) -> str:
    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    async with session_factory() as session:
        account = await create_account(session, name="bench", verified=True, clock=CLOCK)
        if package_quota:
            await set_package_type(
                session,
                "bench",
                name="bench",
                quota=package_quota,
                price_li=0,
                validity_days=30,
            )
            await buy_package(
                session, account.id, "bench", channel="offline", reference="bench", clock=CLOCK
            )
        await session.commit()
    await engine.dispose()
    return account.id


async def _run(url: str, account_id: str, *, queries: int, lanes: int, billable: bool) -> float:
    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    remaining = iter(range(queries))

    async def lane() -> None:
        for _ in remaining:
            usage = QueryUsage(
                account_id=account_id,
                action="PhoneNumberStatusForReal",
                request_id=str(uuid.uuid4()),
                code="OK",
                status="NORMAL" if billable else "UNKNOWN",
                billable=billable,
                masked_number="138****8000",
                carrier="CMCC",
                connector="simulated",
                latency_ms=0,
                source="api",
                occurred_at=datetime.now(UTC),
            )
            async with session_factory() as session, session.begin():
                await record_query(session, usage, prices=PRICES)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return queries / elapsed


async def _fresh_postgres(admin_url: str) -> str:
    name = f"phonestatus_bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def _drop_postgres(admin_url: str, url: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await connection.close()


async def _bench_database(label: str, make_url: object, args: argparse.Namespace) -> None:
    cases = (
        ("not billable", False, 0),
        ("pay-as-you-go", True, 0),
        ("package", True, args.queries),
    )
    rates: dict[str, float] = {}
    for name, billable, quota in cases:
        plain_url, cleanup = await make_url()  # type: ignore[operator]
        url = to_async_url(plain_url)
        upgrade_database(url)
        account_id = await _prepare(url, package_quota=quota)
        rates[name] = await _run(
            url, account_id, queries=args.queries, lanes=args.lanes, billable=billable
        )
        await cleanup()
    base = rates["not billable"]
    for name, rate in rates.items():
        print(f"{label:10s} {name:14s} {rate:8.0f} queries/s  ratio {rate / base:.2f}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        counter = iter(range(1000))

        async def sqlite_url() -> tuple[str, object]:
            path = Path(directory) / f"bench{next(counter)}.sqlite3"

            async def cleanup() -> None:
                return None

            return f"sqlite:///{path}", cleanup

        await _bench_database("sqlite", sqlite_url, args)

    if args.postgres:

        async def postgres_url() -> tuple[str, object]:
            url = await _fresh_postgres(args.postgres)

            async def cleanup() -> None:
                await _drop_postgres(args.postgres, url)

            return url, cleanup

        await _bench_database("postgresql", postgres_url, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--lanes", type=int, default=16, help="transactions in flight at once")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL where throwaway databases are created; empty to skip",
    )
    main_args = parser.parse_args()
    asyncio.run(main(main_args))
