"""A real ``phonestatus serve`` killed with SIGKILL under signed query load.

Every billable answer a client received must have its query record and
charge in the database afterwards, and nothing may be charged beyond the
requests that were in flight when the process died.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.signer import Signer
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.settings import Settings
from phonestatus.storage import create_engine, create_session_factory

PHONESTATUS = str(Path(sys.executable).with_name("phonestatus"))
CLIENTS = 8
KILL_AFTER_ANSWERS = 200
PACKAGE_QUOTA = 80

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: asyncio.subprocess.Process
    port: int
    env: dict[str, str]
    log_path: Path

    async def cli(self, *args: str) -> dict[str, str]:
        process = await asyncio.create_subprocess_exec(
            PHONESTATUS,
            *args,
            "--json",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        return dict(json.loads(stdout.decode().splitlines()[-1]))


@pytest.fixture(params=["sqlite", "postgresql"])
async def running_server(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fresh_database_url: Callable[[str], str],
) -> AsyncIterator[RunningServer]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PHONESTATUS_")}
    env |= {
        "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0",
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
        "PHONESTATUS_ACCOUNT_RATE_LIMIT": "100000/second",
        "PHONESTATUS_BATCH_WORKER_ENABLED": "false",
    }
    if request.param == "postgresql":
        env["PHONESTATUS_DATABASE_URL"] = fresh_database_url("postgresql")
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            PHONESTATUS,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process=process, port=port, env=env, log_path=log_path)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                assert process.returncode is None, log_path.read_text()
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"server did not start:\n{log_path.read_text()}")
        yield server
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_sigkill_server_keeps_every_answered_charge(running_server: RunningServer) -> None:
    server = running_server
    demo = await server.cli("quickstart")
    await server.cli(
        "package",
        "catalog",
        "--set",
        "crash-test",
        "--quota",
        str(PACKAGE_QUOTA),
        "--price",
        "1",
        "--validity-days",
        "30",
    )
    await server.cli("package", "buy", demo["AccountId"], "crash-test")
    signer = Signer(demo["AccessKeyId"], demo["AccessKeySecret"])
    answered: dict[str, bool] = {}
    stop = asyncio.Event()

    async def client_loop(lane: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            number = 0
            while not stop.is_set():
                number += 1
                prepared = signer.v1(
                    "PhoneNumberStatusForReal",
                    {
                        "AuthCode": demo["AuthCode"],
                        "InputNumber": f"138{lane:02d}{number:06d}",
                        "Mask": "NORMAL",
                    },
                )
                try:
                    response = await client.get(prepared.url, timeout=30)
                except httpx.TransportError:
                    return
                body = response.json()
                assert response.status_code == 200, body
                status = (body.get("Data") or {}).get("Status")
                answered[body["RequestId"]] = body["Code"] == "OK" and status not in (
                    None,
                    "UNKNOWN",
                )
                if len(answered) >= KILL_AFTER_ANSWERS:
                    stop.set()

    async def killer() -> None:
        await stop.wait()
        server.process.send_signal(signal.SIGKILL)

    await asyncio.gather(killer(), *(client_loop(lane) for lane in range(CLIENTS)))
    await server.process.wait()

    settings = Settings(
        data_dir=Path(server.env["PHONESTATUS_DATA_DIR"]),
        database_url=server.env.get("PHONESTATUS_DATABASE_URL"),
    )
    engine = create_engine(settings.sqlalchemy_url)
    try:
        async with create_session_factory(engine)() as session:
            account_id = demo["AccountId"]
            records = {
                row.request_id: row.billable
                for row in (
                    await session.execute(
                        select(QueryRecord.request_id, QueryRecord.billable).where(
                            QueryRecord.account_id == account_id
                        )
                    )
                ).all()
            }
            charged = set(
                (
                    await session.scalars(
                        select(QueryRecord.request_id)
                        .join(UsageEvent, UsageEvent.query_record_id == QueryRecord.id)
                        .where(QueryRecord.account_id == account_id)
                    )
                ).all()
            )
            events = await session.scalar(
                select(func.count()).where(UsageEvent.account_id == account_id)
            )
            package_events = await session.scalar(
                select(func.count()).where(
                    UsageEvent.account_id == account_id, UsageEvent.package_id.is_not(None)
                )
            )
            package = await session.scalar(select(Package).where(Package.account_id == account_id))
    finally:
        await engine.dispose()

    billable_answers = {request_id for request_id, billable in answered.items() if billable}
    assert server.process.returncode == -signal.SIGKILL
    assert len(answered) >= KILL_AFTER_ANSWERS
    assert billable_answers, "the load produced no billable answers"
    assert set(answered) <= set(records)
    assert billable_answers <= charged
    # Charges exist only for billable records; unanswered ones are at most the requests in flight.
    assert charged == {request_id for request_id, billable in records.items() if billable}
    assert events == len(charged)
    assert len(set(records) - set(answered)) <= CLIENTS
    assert package is not None
    assert package_events == package.quota - package.remaining
