"""Real ``phonestatus serve`` processes on 127.0.0.1, provisioned through the CLI.

Each server gets a temporary data dir, the simulator at zero latency with an
overrides file for exact answers, and no per-number frequency guard. The
``server`` fixture runs once on SQLite and once on PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PHONESTATUS = str(Path(sys.executable).with_name("phonestatus"))
STARTUP_TIMEOUT_SECONDS = 60

# number,status,carrier,barred,ported_to
OVERRIDES = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
13900000001,SHUTDOWN,,,
13700000002,NOT_EXIST,,,
15000000003,POWER_OFF,,,
13600000004,NORMAL,,,CUCC
18600000005,BUSY,,,
"""
EXPECTED_STATUS = {
    "13800138000": ("NORMAL", "CMCC"),
    "13900000001": ("SHUTDOWN", "CMCC"),
    "13700000002": ("NOT_EXIST", "CMCC"),
    "15000000003": ("POWER_OFF", "CMCC"),
    "13600000004": ("NORMAL", "CUCC"),
    "18600000005": ("BUSY", "CUCC"),
}
BROADNET_NUMBER = "19212345678"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Credentials:
    account_id: str
    access_key_id: str
    secret: str
    auth_code: str


@dataclass
class Server:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    demo: Credentials | None = None
    extra: dict[str, Credentials] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cli(self, *args: str, json_output: bool = True) -> dict[str, str]:
        """Run a CLI command against this server's database and return its JSON output."""
        completed = subprocess.run(
            [PHONESTATUS, *args, *(["--json"] if json_output else [])],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=120,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"phonestatus {' '.join(args)} exited {completed.returncode}: "
                f"{completed.stderr.decode(errors='replace')}"
            )
        if not json_output:
            return {}
        result: dict[str, str] = json.loads(completed.stdout)
        return result

    def provision(self, *, feature: bool = True) -> Credentials:
        """Create a verified account with an AccessKey and an AuthCode through the CLI."""
        account_id = self.cli("account", "create", "--name", "e2e", "--verified")["AccountId"]
        if feature:
            self.cli("feature", "enable", account_id, "--accept-agreement", "--by", "e2e")
        key = self.cli("accesskey", "create", account_id)
        auth_code = self.cli("authcode", "create", account_id)["AuthCode"]
        return Credentials(account_id, key["AccessKeyId"], key["AccessKeySecret"], auth_code)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def start_server(data_dir: Path, **env_overrides: str) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    overrides_path = data_dir / "overrides.csv"
    overrides_path.write_text(OVERRIDES)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PHONESTATUS_")}
    env |= {
        "PHONESTATUS_DATA_DIR": str(data_dir),
        "PHONESTATUS_SIMULATOR_OVERRIDES": str(overrides_path),
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0",
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
        # Settlement would suspend zero-balance test accounts if a run crosses
        # an hour boundary; billing has its own settlement tests.
        "PHONESTATUS_BILLING_SETTLEMENT_ENABLED": "false",
    }
    env |= env_overrides

    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PHONESTATUS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(port=port, env=env, process=process, log_path=log_path)

    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"phonestatus serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"http://{server.endpoint}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"phonestatus serve did not start in time:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    """Start servers on demand; all are stopped at the end of the session."""
    started: list[Server] = []

    def make(**env_overrides: str) -> Server:
        server = start_server(tmp_path_factory.mktemp("server"), **env_overrides)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql+redis"])
def server(request: pytest.FixtureRequest, server_factory: Callable[..., Server]) -> Server:
    """One server per backend, with the quickstart demo account provisioned."""
    overrides: dict[str, str] = {}
    if request.param == "postgresql+redis":
        databases = request.getfixturevalue("postgres_databases")
        overrides = {
            "PHONESTATUS_DATABASE_URL": databases.create(),
            "PHONESTATUS_REDIS_URL": request.getfixturevalue("redis_url"),
        }
    started = server_factory(**overrides)
    demo = started.cli("quickstart")
    started.demo = Credentials(
        demo["AccountId"], demo["AccessKeyId"], demo["AccessKeySecret"], demo["AuthCode"]
    )
    return started
