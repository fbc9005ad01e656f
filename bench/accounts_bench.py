"""Measure the accounts calls on the gateway's hot path, on SQLite and PostgreSQL.

Usage: python bench/accounts_bench.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Creates a throwaway database per backend: a temporary SQLite file, and a
PostgreSQL database that is dropped afterwards. Each call then runs in its own
session, as in a request handler. The timed calls are resolve_access_key
(SELECT and AES-GCM decrypt), check_auth_code, touch_access_key, and
create_access_key with its commit. The script also times one Argon2id
password hash and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from phonestatus.accounts import passwords, service
from phonestatus.accounts.crypto import SecretCipher
from phonestatus.clock import SystemClock
from phonestatus.storage import create_engine, create_session_factory, upgrade_database

ACCOUNTS = 200
CALLS = 3000


async def _time_calls(
    call: Callable[[int], Awaitable[None]], count: int
) -> tuple[float, float, float]:
    """Return (calls per second, p50 ms, p99 ms) for ``count`` sequential calls."""
    latencies = []
    started = time.perf_counter()
    for index in range(count):
        before = time.perf_counter()
        await call(index)
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return count / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


async def bench_backend(name: str, url: str) -> list[tuple[str, str, float, float, float]]:
    upgrade_database(url)
    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    cipher = SecretCipher(b"benchmark-secret-key")
    clock = SystemClock()
    rows = []

    account_ids = []
    async with session_factory() as session:
        for index in range(ACCOUNTS):
            account = await service.create_account(
                session, name=f"bench {index}", verified=True, clock=clock
            )
            account_ids.append(account.id)
        await session.commit()

    key_ids: list[str] = []

    async def create(index: int) -> None:
        async with session_factory() as session:
            access_key, _ = await service.create_access_key(
                session, account_ids[index % ACCOUNTS], cipher=cipher, clock=clock
            )
            await session.commit()
            key_ids.append(access_key.id)

    rows.append((name, "create_access_key + commit", *await _time_calls(create, ACCOUNTS)))

    codes = []
    async with session_factory() as session:
        for account_id in account_ids:
            codes.append((await service.create_auth_code(session, account_id, clock=clock)).code)
        await session.commit()

    async def resolve(index: int) -> None:
        async with session_factory() as session:
            resolved = await service.resolve_access_key(
                session, key_ids[index % len(key_ids)], cipher=cipher
            )
            assert resolved is not None

    async def check(index: int) -> None:
        async with session_factory() as session:
            await service.check_auth_code(
                session,
                account_ids[index % ACCOUNTS],
                codes[index % ACCOUNTS],
                "PhoneNumberStatusForReal",
            )

    async def touch(index: int) -> None:
        async with session_factory() as session:
            await service.touch_access_key(session, key_ids[index % len(key_ids)], clock=clock)
            await session.commit()

    rows.append((name, "resolve_access_key", *await _time_calls(resolve, CALLS)))
    rows.append((name, "check_auth_code", *await _time_calls(check, CALLS)))
    rows.append((name, "touch_access_key + commit", *await _time_calls(touch, CALLS)))
    await engine.dispose()
    return rows


async def main(postgres_url: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.sqlite3'}"
        rows += await bench_backend("SQLite", sqlite_url)

    database = f"phonestatus_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        base = postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        rows += await bench_backend("PostgreSQL", f"{base}/{database}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    hashes = []
    for _ in range(10):
        before = time.perf_counter()
        await passwords.hash_password("benchmark password")
        hashes.append(time.perf_counter() - before)
    median_hash = statistics.median(hashes)

    print("| backend | call | calls/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for backend, call, rate, p50, p99 in rows:
        print(f"| {backend} | {call} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    print(
        f"| - | Argon2id hash (median of 10) | {1 / median_hash:,.1f} | {median_hash * 1000:.0f} | - |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.postgres))
