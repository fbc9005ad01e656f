"""One gateway request from bytes to envelope, with every guard in its documented order.

1. parse parameters and ``Format``;
2. verify signature, timestamp, AccessKey and nonce (``verify``);
3. check ``Version`` and ``Action``;
4. account guards: feature enabled, not blocked by billing, account QPS;
5. AuthCode valid for the action (when the action takes one);
6. run the action (engine), then record the query with ``record_query`` and
   wait for the commit (``recorder``), so the record and its charge commit
   together before the response is sent;
7. render the envelope with a RequestId, which is also in the log line.

Steps 2, 4 and 5 read through ``standing``, which reuses answers for
``PHONESTATUS_GATEWAY_CACHE_SECONDS``. A request rejected in steps 1-4 leaves
no record and no charge. From step 5
on, every answer, an error included, is recorded (billable only when the
action says so).
"""

from __future__ import annotations

import time
from http import HTTPStatus

import structlog
from starlette.types import Receive, Scope, Send

from phonestatus.accounts.errors import SecretDecryptionFailed
from phonestatus.billing import BlockReason, QueryUsage
from phonestatus.gateway import signing
from phonestatus.gateway.actions import ACTIONS, ActionCall, ActionResult, ActionSpec
from phonestatus.gateway.actions.base import required
from phonestatus.gateway.envelope import ResponseFormat, parse_format, render
from phonestatus.gateway.errors import Failure, GatewayError, Problem, error_body, new_request_id
from phonestatus.gateway.nonce import NonceStoreUnavailable
from phonestatus.gateway.params import MAX_BODY_BYTES, ParameterEncodingError, parse_params
from phonestatus.gateway.standing import AuthCodeCheck
from phonestatus.gateway.verify import RequestVerifier, SignedRequest, SigningKey, VerifiedRequest
from phonestatus.gateway.wiring import GatewayServices
from phonestatus.ratelimit import RateLimitConfigError

API_VERSION = "2020-02-17"
ACCEPTED_METHODS = frozenset({"GET", "POST"})
RECORD_SOURCE = "api"

logger = structlog.get_logger("phonestatus.gateway")


class ClientDisconnected(Exception):
    """The client disconnected before its request body arrived, so no response is sent."""


class GatewayPipeline:
    def __init__(self, services: GatewayServices) -> None:
        self._services = services
        self._verifier = RequestVerifier(
            resolve_key=self._resolve_key,
            nonce_store=services.nonce_store,
            clock=services.clock,
            window_seconds=services.settings.signature_window_seconds,
        )

    async def _resolve_key(self, access_key_id: str) -> SigningKey | None:
        try:
            return await self._services.standing.access_key(access_key_id)
        except SecretDecryptionFailed:
            logger.error("access_key_secret_undecryptable", access_key_id=access_key_id)
            raise GatewayError(Failure.INTERNAL) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request as an ASGI app: send the envelope, or nothing if the client left."""
        request_id = new_request_id()
        started = time.perf_counter()
        method: str = scope["method"]
        response_format = ResponseFormat.JSON
        action: str | None = None
        verified: VerifiedRequest | None = None
        signed: SignedRequest | None = None

        try:
            signed = await _read_request(scope, receive)
            response_format = parse_format(signed.params.get("Format"))
            verified, spec = await self._authenticate(signed)
            action = spec.name
            result = await self._run(spec, verified, signed, request_id)
            body: dict[str, object] = {"RequestId": request_id, **result.body}
            status = HTTPStatus.OK
            code = result.code
        except ClientDisconnected:
            return
        except GatewayError as exc:
            failure: GatewayError | None = exc
        except NonceStoreUnavailable as exc:
            logger.error("nonce_store_unavailable", request_id=request_id, error=str(exc))
            failure = GatewayError(Failure.SERVICE_UNAVAILABLE)
        except Exception:
            logger.exception("gateway_request_failed", request_id=request_id, action=action)
            failure = GatewayError(Failure.INTERNAL)
        else:
            failure = None

        if failure is not None:
            host_id = self._services.settings.host_id
            body = error_body(failure, request_id=request_id, host_id=host_id)
            status, code = failure.http_status, failure.code

        # One log line per request, built once: binding loggers per request cost
        # more than the line itself.
        access_key_id: str | None
        logged_action: str | None
        if verified is not None:
            access_key_id, logged_action = verified.access_key_id, action
        else:
            # Rejected before the signature held: log what the client claimed,
            # so an operator can tell which key and action failed.
            access_key_id, logged_action = _claimed_identity(signed)
        logger.info(
            "gateway_request",
            request_id=request_id,
            method=method,
            action=logged_action,
            access_key_id=access_key_id,
            account_id=verified.account_id if verified else None,
            signature=verified.style.value if verified else None,
            code=code,
            http_status=int(status),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
        rendered = render(
            body,
            status=status,
            response_format=response_format,
            action=action,
            request_id=request_id,
        )
        await send(
            {
                "type": "http.response.start",
                "status": rendered.status_code,
                "headers": rendered.raw_headers(),
            }
        )
        await send({"type": "http.response.body", "body": rendered.body})

    async def _authenticate(self, signed: SignedRequest) -> tuple[VerifiedRequest, ActionSpec]:
        verified = await self._verifier.verify(signed)

        if verified.version != API_VERSION:
            raise GatewayError(
                Failure.INVALID_VERSION,
                detail=f"Got {(verified.version or '')[:20]!r}; expected {API_VERSION}.",
            )
        spec = ACTIONS.get(verified.action or "")
        if spec is None:
            raise GatewayError(
                Failure.ACTION_NOT_FOUND, detail=f"Action {(verified.action or '')[:64]!r}."
            )
        return verified, spec

    async def _run(
        self, spec: ActionSpec, verified: VerifiedRequest, signed: SignedRequest, request_id: str
    ) -> ActionResult:
        services = self._services
        call = ActionCall(
            action=spec.name,
            account_id=verified.account_id,
            access_key_id=verified.access_key_id,
            request_id=request_id,
            params=signed.params,
            engine=services.query_engine,
            session_factory=services.session_factory,
        )

        await self._check_account(verified.account_id)
        try:
            if spec.takes_auth_code:
                await self._check_auth_code(call, spec)
            result = await spec.handler(call)
        except GatewayError as error:
            await self._record(call, _failure_result(error))
            raise
        await self._record(call, result)
        return result

    async def _check_account(self, account_id: str) -> None:
        services = self._services
        standing = await services.standing.account(account_id)
        if not standing.feature_enabled:
            raise GatewayError(Failure.FEATURE_NOT_ENABLED)
        if standing.block_reason is BlockReason.ARREARS:
            raise GatewayError(Failure.ACCOUNT_ARREARS)
        if standing.block_reason is BlockReason.PURGED:
            raise GatewayError(Failure.ACCOUNT_PURGED)

        limit = standing.rate_limit or services.settings.account_rate_limit
        try:
            allowed = await services.rate_limiter.hit(account_id, limit)
        except RateLimitConfigError as exc:
            # A broken per-account override must not lift the limit: apply the default.
            logger.error("account_rate_limit_invalid", account_id=account_id, error=str(exc))
            limit = services.settings.account_rate_limit
            allowed = await services.rate_limiter.hit(account_id, limit)
        if not allowed:
            raise GatewayError(Failure.THROTTLING_USER, detail=f"The limit is {limit}.")

    async def _check_auth_code(self, call: ActionCall, spec: ActionSpec) -> None:
        code = required(call, "AuthCode", spec.dialect)
        check = await self._services.standing.auth_code(call.account_id, code, spec.name)
        if check is AuthCodeCheck.NOT_FOUND:
            raise GatewayError.business(
                Problem.AUTH_CODE_NOT_FOUND, spec.dialect, detail=f"AuthCode {code[:40]!r}."
            )
        if check is AuthCodeCheck.ACTION_MISMATCH:
            raise GatewayError.business(
                Problem.AUTH_CODE_ACTION_MISMATCH, spec.dialect, detail=f"AuthCode {code[:40]!r}."
            )

    async def _record(self, call: ActionCall, result: ActionResult) -> None:
        usage = QueryUsage(
            account_id=call.account_id,
            action=call.action,
            request_id=call.request_id,
            code=result.code,
            status=result.status,
            billable=result.billable,
            masked_number=result.masked_number,
            carrier=result.carrier,
            connector=result.connector,
            latency_ms=result.latency_ms,
            source=RECORD_SOURCE,
            occurred_at=self._services.clock.now(),
        )
        await self._services.recorder.record(usage, access_key_id=call.access_key_id)


def _claimed_identity(signed: SignedRequest | None) -> tuple[str | None, str | None]:
    """Return the AccessKey id and action a request names, unverified, cut for the log."""
    if signed is None:
        return None, None
    access_key_id = signed.params.get("AccessKeyId")
    authorization = signed.header("authorization")
    if not access_key_id and signing.is_v3_authorization(authorization):
        try:
            access_key_id = signing.parse_v3_authorization(authorization or "").access_key_id
        except signing.AuthorizationFormatError:
            access_key_id = None
    action = signed.params.get("Action") or signed.header("x-acs-action")
    return _cut(access_key_id), _cut(action)


def _cut(value: str | None) -> str | None:
    return value[:64] if value else None


def _failure_result(error: GatewayError) -> ActionResult:
    """Return what the query record keeps of an action that returned an error: free."""
    return ActionResult(body={}, code=error.code, billable=False)


async def _read_request(scope: Scope, receive: Receive) -> SignedRequest:
    method: str = scope["method"]
    if method not in ACCEPTED_METHODS:
        raise GatewayError(Failure.UNSUPPORTED_METHOD, detail="Use GET or POST.")
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1")
        )
    declared = headers.get("content-length", [None])[0]
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _body_too_large()
    body = await _read_body(receive)
    content_type = headers.get("content-type", [None])[0]
    try:
        params = parse_params(scope.get("query_string", b""), body, content_type)
    except ParameterEncodingError as exc:
        raise GatewayError(Failure.INVALID_PARAMETER, name="query", detail=f"{exc}.") from None
    return SignedRequest(
        method=method,
        path=scope["path"],
        params=params,
        headers=headers,
        body=body,
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _body_too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _body_too_large() -> GatewayError:
    return GatewayError(
        Failure.INVALID_PARAMETER,
        name="body",
        detail=f"The body is larger than {MAX_BODY_BYTES} bytes.",
    )
