"""What every action shares: the call it receives, the result it returns, parameter readers.

An action reads its business parameters, queries the engine and returns
an ``ActionResult``: the body fields after ``RequestId`` plus what the query
record needs. Invalid input is raised as ``GatewayError`` in the action's
``Dialect``, so each action answers with the codes its documentation lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.detection import OutcomeCode, ProbeSubject, QueryEngine, QueryResult
from phonestatus.gateway.errors import Dialect, GatewayError, Problem
from phonestatus.gateway.params import RequestParams
from phonestatus.logs import mask_number
from phonestatus.numbers import DigestError, Mask, NumberParseError, ParseErrorReason

OK = "OK"

# Parse failures that concern the kind of number rather than its spelling.
_UNSUPPORTED_REASONS = frozenset(
    {
        ParseErrorReason.NOT_MOBILE,
        ParseErrorReason.UNSUPPORTED_SEGMENT,
        ParseErrorReason.FOREIGN_NUMBER,
    }
)


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One authenticated call of an action by an account."""

    action: str
    account_id: str
    access_key_id: str
    request_id: str
    params: RequestParams
    engine: QueryEngine
    session_factory: async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The body after ``RequestId`` and the facts the query record keeps."""

    body: dict[str, object]
    code: str = OK
    status: str | None = None
    billable: bool = False
    masked_number: str | None = None
    carrier: str | None = None
    connector: str | None = None
    latency_ms: int | None = None


ActionHandler = Callable[[ActionCall], Awaitable[ActionResult]]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action's wire name, handler and whether it takes an ``AuthCode``."""

    name: str
    handler: ActionHandler
    dialect: Dialect
    takes_auth_code: bool = True


def required(call: ActionCall, name: str, dialect: Dialect) -> str:
    """Return a parameter that must be present and non-empty, or raise ``Missing{name}``."""
    value = call.params.get(name)
    if value is None or value == "":
        raise GatewayError.business(Problem.MISSING_PARAMETER, dialect, name=name)
    return value


def read_mask(
    call: ActionCall, dialect: Dialect, *, allowed: frozenset[Mask] = frozenset(Mask)
) -> Mask:
    """Read ``Mask``; the reference service documents uppercase values, lowercase is accepted too."""
    text = required(call, "Mask", dialect)
    try:
        mask = Mask(text.strip().upper())
    except ValueError:
        mask = None
    if mask is None or mask not in allowed:
        expected = ", ".join(sorted(item.value for item in allowed))
        raise GatewayError.business(
            Problem.INVALID_MASK,
            dialect,
            detail=f"Mask {text[:40]!r} is not valid; expected one of {expected}.",
        )
    return mask


def read_subject(text: str, mask: Mask, dialect: Dialect, *, name: str) -> ProbeSubject:
    """Parse a number or digest, naming the parameter and value in the error."""
    try:
        return ProbeSubject.from_input(text, mask)
    except NumberParseError as exc:
        problem = (
            Problem.UNSUPPORTED_NUMBER
            if exc.reason in _UNSUPPORTED_REASONS
            else Problem.MALFORMED_NUMBER
        )
        raise GatewayError.business(problem, dialect, detail=f"{name}: {exc}.") from None
    except DigestError as exc:
        raise GatewayError.business(
            Problem.DIGEST_MISMATCH, dialect, detail=f"{name}: {exc}."
        ) from None


def refusal(result: QueryResult, subject: ProbeSubject, dialect: Dialect) -> ActionResult | None:
    """Return the HTTP 200 result for OperatorLimit or RequestFrequencyLimit, None for OK."""
    if result.code is OutcomeCode.OK:
        return None
    problem = (
        Problem.OPERATOR_LIMIT
        if result.code is OutcomeCode.OPERATOR_LIMIT
        else Problem.FREQUENCY_LIMIT
    )
    error = GatewayError.business(problem, dialect)
    return ActionResult(
        body={"Code": error.code, "Message": error.message},
        code=error.code,
        masked_number=mask_number(subject.value),
        carrier=result.carrier.value if result.carrier is not None else None,
        connector=result.connector,
        latency_ms=result.latency_ms,
    )


def answered(
    result: QueryResult, subject: ProbeSubject, body: dict[str, object], *, status: str | None
) -> ActionResult:
    """Wrap an OK answer; billing follows ``QueryResult.billable``."""
    return ActionResult(
        body={"Code": OK, "Message": OK, **body},
        code=OK,
        status=status,
        billable=result.billable,
        masked_number=mask_number(subject.value),
        carrier=result.carrier.value if result.carrier is not None else None,
        connector=result.connector,
        latency_ms=result.latency_ms,
    )


def without_none(fields: Mapping[str, object | None]) -> dict[str, object]:
    """Drop absent fields: clients read a missing key as null but reject a wrongly typed one."""
    return {name: value for name, value in fields.items() if value is not None}
