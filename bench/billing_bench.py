"""Metering benchmarks: signed gateway throughput with metering on and off, and ``record_query`` alone.

Run: .venv/bin/python bench/billing_bench.py gateway [--seconds 10] [--database-url URL]
     .venv/bin/python bench/billing_bench.py record [--queries 3000] [--lanes 16]
         [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

``gateway`` starts the real application under uvicorn twice on the same
database, one after the other, and drives both with the load generator of
``bench/gateway_bench.py`` (signed PhoneNumberStatusForReal calls over
keep-alive connections), in two modes:

- ``on``: the application as shipped (the gateway's recorder meters each
  committed group with one ``meter_queries`` call);
- ``off``: ``meter_queries`` is replaced by a function that does nothing, so a
  call writes no query record and no charge. Everything else, including the
  commit that updates the AccessKey's last use, stays.

It prints calls/s per mode and the ratio of ``on`` to ``off``.

``record`` measures ``record_query`` alone:

each query is its own transaction (insert the record, charge it, commit), as
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
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def metering_off_app() -> Any:
    """Build the application with query recording replaced by a no-op (uvicorn ``--factory``).

    Nothing is written per query: no transaction, no writer process or thread,
    so "on" pays for all of metering, wherever it runs.
    """
    from phonestatus.gateway.recorder import QueryRecorder

    async def record_nothing(
        self: Any, usages: list[Any], access_key_ids: list[str], now: Any
    ) -> list[bool]:
        return [True for _ in usages]

    QueryRecorder._commit_group = record_nothing  # type: ignore[method-assign]
    return _serve_app()


def _serve_app() -> Any:
    """Build the application as ``phonestatus serve`` does, logging and switch interval too."""
    from phonestatus.app import SWITCH_INTERVAL_SECONDS, create_app
    from phonestatus.logs import configure_logging
    from phonestatus.settings import LogFormat, Settings

    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    settings = Settings()
    configure_logging(
        json=settings.log_format is LogFormat.JSON, cache_loggers=True, background=True
    )
    return create_app(settings)


def metering_on_app() -> Any:
    return _serve_app()


def _start_app(factory: str, env: dict[str, str], workers: int) -> tuple[Any, int]:
    import subprocess
    import sys

    import gateway_bench

    port = gateway_bench.free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("uvicorn")),
            f"billing_bench:{factory}",
            "--factory",
            "--app-dir",
            str(Path(__file__).resolve().parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway_bench.wait_ready(port, process)
    return process, port


def gateway_main(args: argparse.Namespace) -> None:
    import gateway_bench

    with tempfile.TemporaryDirectory(prefix="billing-bench-") as data_dir:
        env = gateway_bench.server_env(data_dir, database_url=args.database_url)
        demo = None
        rates: dict[str, list[float]] = {"on": [], "off": []}
        errors = {"on": 0.0, "off": 0.0}
        # Rounds alternate the order, so no mode always runs on a warmer database.
        order = [
            ("metering_on_app", "on"),
            ("metering_off_app", "off"),
        ]
        for round_index in range(args.rounds):
            for factory, label in order if round_index % 2 == 0 else order[::-1]:
                process, port = _start_app(factory, env, args.workers)
                try:
                    if demo is None:
                        demo = gateway_bench.cli_json(env, "quickstart")
                        gateway_bench.cli_json(env, "recharge", demo["AccountId"], "1000000")
                    credentials = gateway_bench.Credentials(
                        demo["AccessKeyId"], demo["AccessKeySecret"], demo["AuthCode"]
                    )
                    result = gateway_bench.run_load(
                        port,
                        credentials,
                        clients=args.clients,
                        connections=args.connections,
                        seconds=args.seconds,
                        per_client=args.per_client,
                    )
                finally:
                    gateway_bench.stop(process)
                rates[label].append(result["calls_per_second"])
                errors[label] += result["errors"]

    off = statistics.median(rates["off"])
    database = "postgresql" if args.database_url else "sqlite"
    for label in ("on", "off"):
        runs = ", ".join(f"{rate:.1f}" for rate in rates[label])
        median = statistics.median(rates[label])
        print(
            f"{database}: metering {label:3s} median {median:8.1f} calls/s "
            f"(runs {runs}; errors {errors[label]:.0f})"
        )
    ratio = statistics.median(rates["on"]) / max(off, 1e-9)
    print(f"{database}: ratio on/off {ratio:.3f} (goal >= 0.8)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gateway = commands.add_parser("gateway", help="signed gateway calls, metering on and off")
    gateway.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    gateway.add_argument("--clients", type=int, default=2, help="load generator processes")
    gateway.add_argument("--connections", type=int, default=32, help="connections per client")
    gateway.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    gateway.add_argument("--per-client", type=int, default=60_000, help="requests per client")
    gateway.add_argument("--database-url", help="PostgreSQL URL; SQLite in a temp dir by default")
    gateway.add_argument("--rounds", type=int, default=3, help="on/off pairs, order alternating")
    record = commands.add_parser("record", help="record_query alone")
    record.add_argument("--queries", type=int, default=3000)
    record.add_argument("--lanes", type=int, default=16, help="transactions in flight at once")
    record.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL where throwaway databases are created; empty to skip",
    )
    main_args = parser.parse_args()
    if main_args.command == "gateway":
        gateway_main(main_args)
    else:
        asyncio.run(main(main_args))
