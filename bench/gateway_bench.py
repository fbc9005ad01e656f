"""Gateway throughput: signed ForReal calls/s through the whole stack vs a bare Starlette endpoint.

Run: .venv/bin/python bench/gateway_bench.py [--workers 1] [--clients 2] [--connections 32]
     [--seconds 10] [--rounds 1] [--database-url postgresql://...] [--redis-url redis://...]

Both servers run under uvicorn on 127.0.0.1 with the same worker count, in the
same run:

* ``phonestatus serve``: signature check (RPC V1), nonce, account guards,
  AuthCode, the simulated network at zero latency, ``record_query`` and the
  JSON envelope, on SQLite unless ``--database-url`` is given;
* a bare Starlette app (``bare_app`` below) that returns a fixed JSON body of
  the same shape.

The load generator is ``--clients`` separate processes, each with
``--connections`` keep-alive HTTP/1.1 connections written on asyncio streams.
A completed call is any HTTP 200 with a ``Code`` (OperatorLimit included).
Every request is signed before the clock starts, so signing costs the client
nothing during the measurement. The bare endpoint receives the same URLs.
The script prints calls/s for both and their ratio; the goal is at least 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT_SECONDS = 90
WARM_UP_SECONDS = 2.0
BARE_BODY = json.dumps(
    {
        "RequestId": "00000000-0000-0000-0000-000000000000",
        "Code": "OK",
        "Message": "OK",
        "Data": {"Status": "NORMAL", "Carrier": "CMCC"},
    },
    separators=(",", ":"),
).encode()


async def bare_endpoint(request: Request) -> Response:
    return Response(BARE_BODY, media_type="application/json;charset=utf-8")


bare_app = Starlette(routes=[Route("/", bare_endpoint, methods=["GET", "POST"])])


# ---------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start within {STARTUP_TIMEOUT_SECONDS} s")


def start_phonestatus(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "phonestatus"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(port, process)
    return process, port


def start_bare(workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "gateway_bench:bare_app",
            "--app-dir",
            str(BENCH_DIR),
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(port, process)
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def cli_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [str(BIN / "phonestatus"), *args, "--json"], env=env, capture_output=True, check=True
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


# ---------------------------------------------------------------------------------------------
# Load generator


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret: str
    auth_code: str


def presign(credentials: Credentials, count: int, seed: int) -> list[bytes]:
    """Return ``count`` complete GET requests for ForReal, each with its own nonce."""
    from phonestatus.gateway import signing

    rng = random.Random(seed)
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    requests = []
    for _ in range(count):
        params = {
            "AccessKeyId": credentials.access_key_id,
            "Action": "PhoneNumberStatusForReal",
            "AuthCode": credentials.auth_code,
            "Format": "JSON",
            "InputNumber": f"138{rng.randrange(10**8):08d}",
            "Mask": "NORMAL",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": timestamp,
            "Version": "2020-02-17",
        }
        string_to_sign = signing.v1_string_to_sign("GET", params)
        params["Signature"] = signing.v1_signature(string_to_sign, credentials.secret)
        requests.append(f"GET /?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return requests


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    return status, body


async def drive(
    port: int, requests: list[bytes], connections: int, seconds: float
) -> dict[str, int]:
    """Send requests over keep-alive connections; count those completed after the warm-up."""
    queue = iter(requests)
    counts = {"ok": 0, "errors": 0, "exhausted": 0}
    started = time.monotonic()
    measure_from = started + WARM_UP_SECONDS
    stop_at = measure_from + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                request = next(queue, None)
                if request is None:
                    counts["exhausted"] += 1
                    return
                writer.write(request)
                status, body = await read_response(reader)
                if time.monotonic() < measure_from:
                    continue
                # OperatorLimit from the simulated carriers is an HTTP 200 response too.
                if status == 200 and b'"Code":' in body:
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return counts


def client_process(
    port: int, requests: list[bytes], connections: int, seconds: float, results: Any
) -> None:
    results.put(asyncio.run(drive(port, requests, connections, seconds)))


def run_load(
    port: int,
    credentials: Credentials,
    *,
    clients: int,
    connections: int,
    seconds: float,
    per_client: int,
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    batches = [presign(credentials, per_client, seed) for seed in range(clients)]
    processes = [
        context.Process(target=client_process, args=(port, batch, connections, seconds, results))
        for batch in batches
    ]
    for process in processes:
        process.start()
    totals = {"ok": 0, "errors": 0, "exhausted": 0}
    for _ in processes:
        for key, value in results.get(timeout=seconds + 120).items():
            totals[key] += value
    for process in processes:
        process.join(timeout=30)
    return {
        "calls_per_second": totals["ok"] / seconds,
        "errors": totals["errors"],
        "exhausted_connections": totals["exhausted"],
    }


def server_env(
    data_dir: str, *, database_url: str | None = None, redis_url: str | None = None
) -> dict[str, str]:
    """Return the environment for a benchmarked server: this process's, minus PHONESTATUS_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PHONESTATUS_")}
    env |= {
        "PHONESTATUS_DATA_DIR": data_dir,
        "PHONESTATUS_SECRET_KEY": secrets.token_urlsafe(32),
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0",
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
        # The default 200/second per account would measure the throttle, not the stack.
        "PHONESTATUS_ACCOUNT_RATE_LIMIT": "1000000/second",
        # An idle batch worker polls the database every second. On SQLite it competes
        # with the gateway for the write lock, so it is switched off for this run.
        "PHONESTATUS_BATCH_WORKER_ENABLED": "false",
    }
    if database_url:
        env["PHONESTATUS_DATABASE_URL"] = database_url
    if redis_url:
        env["PHONESTATUS_REDIS_URL"] = redis_url
    return env


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Return the run with the median calls/s (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda run: run["calls_per_second"])
    return ordered[(len(ordered) - 1) // 2]


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for both servers")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=32, help="connections per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--per-client", type=int, default=60_000, help="requests signed per client")
    parser.add_argument("--database-url", help="PostgreSQL URL; SQLite in a temp dir by default")
    parser.add_argument("--redis-url", help="Redis URL for nonces and rate limits")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure both servers this many times, alternating which goes first; "
        "the ratio is that of the medians",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as data_dir:
        env = server_env(data_dir, database_url=args.database_url, redis_url=args.redis_url)

        full, full_port = start_phonestatus(env, args.workers)
        bare, bare_port = start_bare(args.workers)
        try:
            demo = cli_json(env, "quickstart")
            cli_json(env, "recharge", demo["AccountId"], "1000000")
            credentials = Credentials(
                demo["AccessKeyId"], demo["AccessKeySecret"], demo["AuthCode"]
            )
            load = {
                "clients": args.clients,
                "connections": args.connections,
                "seconds": args.seconds,
                "per_client": args.per_client,
            }
            bare_runs: list[dict[str, float]] = []
            full_runs: list[dict[str, float]] = []
            for round_index in range(args.rounds):
                # Alternate the order, so drift in machine load falls on both alike.
                order = [(bare_port, bare_runs), (full_port, full_runs)]
                if round_index % 2:
                    order.reverse()
                for port, runs in order:
                    runs.append(run_load(port, credentials, **load))
        finally:
            stop(full)
            stop(bare)

    bare_result = _median_run(bare_runs)
    full_result = _median_run(full_runs)
    ratio = full_result["calls_per_second"] / max(bare_result["calls_per_second"], 1e-9)
    report = {
        "workers": args.workers,
        "clients": args.clients,
        "connections_per_client": args.connections,
        "database": "postgresql" if args.database_url else "sqlite",
        "redis": bool(args.redis_url),
        "rounds": args.rounds,
        "bare": bare_result,
        "gateway": full_result,
        "bare_runs": [run["calls_per_second"] for run in bare_runs],
        "gateway_runs": [run["calls_per_second"] for run in full_runs],
        "ratio": round(ratio, 3),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"bare Starlette : {bare_result['calls_per_second']:9.1f} calls/s "
        f"(errors {bare_result['errors']})"
    )
    print(
        f"phonestatus    : {full_result['calls_per_second']:9.1f} calls/s "
        f"(errors {full_result['errors']})"
    )
    if args.rounds > 1:
        print(f"bare runs      : {', '.join(f'{run:.1f}' for run in report['bare_runs'])}")
        print(f"gateway runs   : {', '.join(f'{run:.1f}' for run in report['gateway_runs'])}")
    print(f"ratio          : {ratio:.3f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
