"""Operator command ``phonestatus query``: run the detection engine locally on one number.

It reads the same settings as ``serve`` (connector, simulator, limits) but
needs no database. Exit status: 0 when the query returned Code OK, 1 for a
carrier refusal, a frequency limit or a settings error, and 2 for input that
cannot be parsed.
"""

from __future__ import annotations

from typing import Any

import typer

from phonestatus.clock import SystemClock
from phonestatus.commands.common import fail, print_json, run_async
from phonestatus.detection import OutcomeCode, ProbeSubject, QueryEngine, QueryResult, Scene
from phonestatus.detection.aliyun import AliyunConfigError
from phonestatus.detection.overrides import SimulatorConfigError
from phonestatus.numbers import DigestError, Mask, NumberParseError
from phonestatus.ratelimit import RateLimitConfigError
from phonestatus.settings import Settings

EXIT_NOT_OK = 1
EXIT_INVALID_INPUT = 2
# Wire codes for input errors, as the status actions name them.
CODE_INVALID_NUMBER = "MobileNumberIllegal"
CODE_DIGEST_MISMATCH = "MobileNumberTypeNotMatch"


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def query(
    number: str = typer.Argument(..., help="Mobile number in any common form, or a digest."),
    scene: Scene = typer.Option(
        Scene.REAL,
        "--scene",
        case_sensitive=False,
        help="Question to ask: real, sms, voice, account or public (status actions); "
        "legacy, empty, virtual or attribute.",
    ),
    mask: Mask = typer.Option(
        Mask.NORMAL,
        "--mask",
        case_sensitive=False,
        help="Digest type of NUMBER: MD5, SHA256 or SM3; NORMAL for a plain number.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Query one number's status through the configured connector."""
    try:
        subject = ProbeSubject.from_input(number, mask)
    except (NumberParseError, DigestError) as exc:
        code = CODE_INVALID_NUMBER if isinstance(exc, NumberParseError) else CODE_DIGEST_MISMATCH
        if as_json:
            print_json({"Code": code, "Message": str(exc)})
            raise typer.Exit(EXIT_INVALID_INPUT) from exc
        fail(str(exc), EXIT_INVALID_INPUT)

    try:
        result = run_async(_run(subject, scene))
    except (SimulatorConfigError, AliyunConfigError, RateLimitConfigError, ValueError) as exc:
        fail(str(exc))

    if as_json:
        print_json(result_payload(result))
    else:
        _print_human(result)
    if result.code is not OutcomeCode.OK:
        raise typer.Exit(EXIT_NOT_OK)


async def _run(subject: ProbeSubject, scene: Scene) -> QueryResult:
    engine = QueryEngine.from_settings(Settings(), clock=SystemClock())
    try:
        return await engine.query(subject, scene)
    finally:
        await engine.aclose()


def result_payload(result: QueryResult) -> dict[str, Any]:
    """Render a result with the API's field names."""
    return {
        "Code": result.code.value,
        "Number": result.number,
        "Status": result.scene_status,
        "Carrier": result.carrier.value if result.carrier else None,
        "BasicCarrier": result.basic_carrier.value if result.basic_carrier else None,
        "IsNumberPortability": result.is_ported,
        "IsPrivacyNumber": result.is_privacy_number,
        "Province": result.province,
        "City": result.city,
        "Connector": result.connector,
        "RawCode": result.raw_code,
        "LatencyMs": result.latency_ms,
    }


def _print_human(result: QueryResult) -> None:
    status = result.scene_status or "-"
    if result.status is not None and result.scene_status == result.status.value:
        status = f"{result.status.value} ({result.status.label_zh})"
    carrier = f"{result.carrier.value} ({result.carrier.label_zh})" if result.carrier else "-"
    place = " ".join(part for part in (result.province, result.city) if part) or "-"
    rows = [
        ("Code", result.code.value),
        ("Number", result.number),
        ("Status", status),
        ("Carrier", carrier),
        ("BasicCarrier", result.basic_carrier.value if result.basic_carrier else "-"),
        ("Ported", "yes" if result.is_ported else "no"),
        ("Location", place),
        ("Connector", f"{result.connector} ({result.raw_code}, {result.latency_ms} ms)"),
    ]
    for label, value in rows:
        typer.echo(f"{label:<13}{value}")
