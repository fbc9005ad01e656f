"""The RPC endpoint: every Dytnsapi action is served at ``/`` (GET and POST).

Other methods reach the pipeline too, so they get the contract's
``UnsupportedHTTPMethod`` envelope instead of a bare 405.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phonestatus.gateway.pipeline import GatewayPipeline

router = APIRouter()


@router.api_route(
    "/",
    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
    include_in_schema=False,
)
async def rpc_endpoint(request: Request) -> Response:
    pipeline: GatewayPipeline = request.app.state.gateway
    return await pipeline.handle(request)
