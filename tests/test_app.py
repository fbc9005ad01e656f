from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from structlog.testing import capture_logs

from phonestatus.app import create_app
from phonestatus.clock import SystemClock
from phonestatus.detection import ProbeSubject, QueryEngine, Scene
from phonestatus.numbers import Mask
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings


@pytest.fixture
async def client(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_factory()
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    # httpx's ASGITransport does not run the lifespan, which would set this.
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await runtime.close()


class TestHealth:
    async def test_health_reports_version(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")

        assert response.status_code == 200
        assert response.json()["status"] == "ok"


class TestMetrics:
    async def test_metrics_exposes_engine_counters(
        self, client: httpx.AsyncClient, settings_factory: Callable[..., Settings]
    ) -> None:
        engine = QueryEngine.from_settings(settings_factory(), clock=SystemClock())
        try:
            await engine.query(ProbeSubject.from_input("13800138000", Mask.NORMAL), Scene.SMS)
        finally:
            await engine.aclose()

        response = await client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "phonestatus_detection_queries_total{" in response.text
        assert 'scene="sms"' in response.text


class TestRequestLog:
    async def test_console_request_logged(self, client: httpx.AsyncClient) -> None:
        with capture_logs() as logs:
            response = await client.post(
                "/console/api/session", json={"username": "nobody", "password": "wrong"}
            )

        lines = [entry for entry in logs if entry["event"] == "http_request"]
        assert response.status_code == 401
        assert len(lines) == 1
        assert lines[0]["method"] == "POST"
        assert lines[0]["path"] == "/console/api/session"
        assert lines[0]["http_status"] == 401
        assert "wrong" not in repr(lines[0])

    async def test_unknown_path_logged(self, client: httpx.AsyncClient) -> None:
        with capture_logs() as logs:
            response = await client.get("/no-such-page")

        lines = [entry for entry in logs if entry["event"] == "http_request"]
        assert response.status_code == 404
        assert [line["http_status"] for line in lines] == [404]

    async def test_health_not_logged(self, client: httpx.AsyncClient) -> None:
        with capture_logs() as logs:
            await client.get("/health")

        assert [entry for entry in logs if entry["event"] == "http_request"] == []
