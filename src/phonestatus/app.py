"""ASGI application factory: wires the gateway, console, metrics and lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Message, Receive, Scope, Send

from phonestatus import __version__
from phonestatus.batch.wiring import start_batch_worker
from phonestatus.billing.settlement import start_settlement
from phonestatus.console import auth as console_auth
from phonestatus.console import batch_api
from phonestatus.gateway.pipeline import GatewayPipeline
from phonestatus.gateway.wiring import GatewayServices
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings

# Interpreter switch interval for `serve`: a thread waiting for the interpreter
# lock (the query recorder, back from a SQLite call) gets it after this long at
# the latest. At the default 5 ms a group commit waited for the busy event loop
# once per database call, and the loop sat idle while every connection waited
# for the commit. bench/billing_bench.py on SQLite gave on/off 0.75 at 5 ms and
# 0.78-0.81 at 0.5 ms.
SWITCH_INTERVAL_SECONDS = 0.0005


# Probed every few seconds by load balancers and scrapers; a line each would bury the rest.
UNLOGGED_PATHS = frozenset({"/health", "/metrics"})

logger = structlog.get_logger("phonestatus.http")


class PhonestatusApp(FastAPI):
    """The FastAPI app with the RPC gateway in front of routing.

    Every Dytnsapi action is served at ``/`` (any method, so other methods get
    the contract's ``UnsupportedHTTPMethod`` envelope). The gateway serves those
    requests itself and builds every envelope, errors included. FastAPI's
    routing, dependency and exception layers would only add cost to the
    hottest path of the service.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if scope["path"] == "/":
            gateway: GatewayPipeline | None = getattr(self.state, "gateway", None)
            if gateway is not None:
                # The gateway logs its own line, with the RequestId it returns.
                await gateway(scope, receive, send)
                return
        if scope["path"] in UNLOGGED_PATHS:
            await super().__call__(scope, receive, send)
            return
        await self._call_logged(scope, receive, send)

    async def _call_logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a console or other request and log one line for it."""
        started = time.perf_counter()
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_status)
        finally:
            logger.info(
                "http_request",
                method=scope["method"],
                path=scope["path"][:200],
                http_status=status,
                latency_ms=round((time.perf_counter() - started) * 1000),
            )


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Create the application. Migrations run at startup unless a runtime is passed in."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.build(settings)
        gateway_services = GatewayServices.from_runtime(app.state.runtime)
        app.state.gateway = GatewayPipeline(gateway_services)
        stop_settlement = start_settlement(
            app.state.runtime.session_factory,
            app.state.runtime.settings,
            clock=app.state.runtime.clock,
        )
        stop_batch_worker = start_batch_worker(app.state.runtime)
        try:
            yield
        finally:
            await stop_batch_worker()
            await stop_settlement()
            await gateway_services.aclose()
            if owned:
                await app.state.runtime.close()

    app = PhonestatusApp(title="phonestatus", version=__version__, lifespan=lifespan, docs_url=None)
    app.include_router(console_auth.router)
    app.include_router(batch_api.router)
    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    # NOTE: with `serve --workers N` each worker keeps its own counters, so a
    # scrape sees the worker that answered it.
    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """Return the console's error shape for a request that fails validation.

    FastAPI's own 422 body echoes the input, which for a sign-in sent as a
    form instead of JSON is the password. This body names only the fields
    and the problems.
    """
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid value')}")
    message = "invalid request: " + "; ".join(problems)
    if request.method in ("POST", "PUT", "PATCH") and any(
        tuple(error.get("loc", ())) == ("body",) for error in exc.errors()
    ):
        message += " (send a JSON object with Content-Type: application/json)"
    return JSONResponse(
        status_code=422, content={"detail": {"Code": "InvalidParameter", "Message": message}}
    )
