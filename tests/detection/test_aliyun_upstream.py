"""AliyunConnector against a second phonestatus serving Dytnsapi on 127.0.0.1.

The upstream runs ``phonestatus serve`` with the simulator and an overrides
file. A local engine with the same simulator settings is the reference: the
upstream path must give the same result for every scene it carries.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from phonestatus.clock import FrozenClock
from phonestatus.detection import OutcomeCode, ProbeSubject, QueryEngine, QueryResult, Scene
from phonestatus.detection.aliyun import AliyunConnector, AliyunCredentials
from phonestatus.numbers import Mask, digest
from phonestatus.ratelimit import NumberGuard, RateLimitStorage
from phonestatus.settings import Settings

pytestmark = pytest.mark.e2e

PHONESTATUS = str(Path(sys.executable).with_name("phonestatus"))
STARTUP_TIMEOUT_SECONDS = 60
SEED = "upstream-test"
OVERRIDES = """number,status,carrier,barred,ported_to
13800138000,NORMAL,,,
13900000001,SHUTDOWN,,,
13700000002,NOT_EXIST,,,
15000000003,POWER_OFF,,,
13600000004,NORMAL,,,CUCC
18600000005,BUSY,,,
13900000006,,,sms,
13900000007,,,voice,
18900000008,POWER_OFF,,,
13900000009,NORMAL,,,CBN
"""
# Scenes the upstream carries without a dedicated AuthCode per action.
SCENES = (
    Scene.REAL,
    Scene.SMS,
    Scene.VOICE,
    Scene.ACCOUNT,
    Scene.PUBLIC,
    Scene.LEGACY,
    Scene.VIRTUAL,
    Scene.ATTRIBUTE,
)
NUMBERS = [line.split(",")[0] for line in OVERRIDES.splitlines()[1:]]


@dataclass
class Upstream:
    endpoint: str
    credentials: AliyunCredentials


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"upstream phonestatus exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://{endpoint}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"upstream phonestatus did not start in time:\n{log.read_text()}")


@pytest.fixture(scope="module")
def overrides_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("overrides") / "overrides.csv"
    path.write_text(OVERRIDES, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, overrides_path: Path) -> Iterator[Upstream]:
    data_dir = tmp_path_factory.mktemp("upstream")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PHONESTATUS_")}
    env |= {
        "PHONESTATUS_DATA_DIR": str(data_dir),
        "PHONESTATUS_SIMULATOR_OVERRIDES": str(overrides_path),
        "PHONESTATUS_SIMULATOR_SEED": SEED,
        "PHONESTATUS_SIMULATOR_LATENCY_SCALE": "0",
        "PHONESTATUS_NUMBER_RATE_LIMIT": "off",
    }
    port = _free_port()
    quickstart = subprocess.run(
        [PHONESTATUS, "quickstart", "--port", str(port), "--json"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    demo = json.loads(quickstart.stdout)
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [PHONESTATUS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, f"127.0.0.1:{port}", log)
        yield Upstream(
            endpoint=f"127.0.0.1:{port}",
            credentials=AliyunCredentials(
                access_key_id=demo["AccessKeyId"],
                access_key_secret=demo["AccessKeySecret"],
                auth_code=demo["AuthCode"],
            ),
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def storage() -> AsyncIterator[RateLimitStorage]:
    storage = RateLimitStorage.from_url(None)
    yield storage
    await storage.aclose()


@pytest.fixture
async def through_upstream(
    upstream: Upstream, storage: RateLimitStorage
) -> AsyncIterator[QueryEngine]:
    connector = AliyunConnector(
        credentials=upstream.credentials, endpoint=upstream.endpoint, protocol="http"
    )
    engine = QueryEngine(
        connectors=connector,
        number_guard=NumberGuard("off", storage=storage),
        cache=None,
        clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)),
        timeout_seconds=10.0,
    )
    yield engine
    await engine.aclose()


@pytest.fixture
async def reference(overrides_path: Path, tmp_path: Path) -> AsyncIterator[QueryEngine]:
    settings = Settings(
        data_dir=tmp_path,
        simulator_overrides=overrides_path,
        simulator_seed=SEED,
        simulator_latency_scale=0.0,
        number_rate_limit="off",
    )
    engine = QueryEngine.from_settings(
        settings, clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    )
    yield engine
    await engine.aclose()


def _comparable(result: QueryResult) -> dict[str, object]:
    # Only the VIRTUAL action reports the privacy flag over the wire. It reports
    # no carrier, and neither does a refusal, so carriers are compared elsewhere.
    virtual = result.scene is Scene.VIRTUAL
    answered = result.code is OutcomeCode.OK and not virtual
    return {
        "code": result.code,
        "status": None if virtual else result.status,
        "scene_status": result.scene_status,
        "carrier": result.carrier if answered else None,
        "basic_carrier": result.basic_carrier,
        "is_ported": result.is_ported if answered else None,
        "is_privacy_number": result.is_privacy_number if virtual else None,
        "province": result.province,
        "city": result.city,
        "billable": result.billable,
    }


class TestThroughUpstream:
    @pytest.mark.parametrize("scene", SCENES)
    async def test_query_matches_local_simulator(
        self, through_upstream: QueryEngine, reference: QueryEngine, scene: Scene
    ) -> None:
        for number in NUMBERS:
            subject = ProbeSubject.for_number(number)
            remote = await through_upstream.query(subject, scene)
            local = await reference.query(subject, scene)
            assert remote.connector == "aliyun"
            assert _comparable(remote) == _comparable(local), number

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    async def test_query_digest_matches_number(
        self, through_upstream: QueryEngine, mask: Mask
    ) -> None:
        plain = await through_upstream.query(ProbeSubject.for_number("13900000006"), Scene.SMS)
        hashed = await through_upstream.query(
            ProbeSubject.from_input(digest("13900000006", mask), mask), Scene.SMS
        )
        assert hashed.status is plain.status
        assert hashed.carrier is plain.carrier
