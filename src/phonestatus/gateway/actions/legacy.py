"""Legacy actions without AuthCode: DescribePhoneNumberStatus and DescribePhoneNumberAttribute.

Both take a plain ``PhoneNumber``. Their documented ``isv.*``/``isp.*`` codes
travel in HTTP 200 bodies, as the older gateway returned them.
``DescribePhoneNumberStatus`` answers ``PhoneStatus:{Status, SerialId,
Carrier}`` with string values only, and ``UNKNOW`` (sic) when the carrier is
unknown.
"""

from __future__ import annotations

import uuid

from phonestatus.detection import Scene
from phonestatus.gateway.actions.attribute import attribution_fields
from phonestatus.gateway.actions.base import (
    ActionCall,
    ActionResult,
    ActionSpec,
    answered,
    read_subject,
    refusal,
    required,
)
from phonestatus.gateway.errors import Dialect, GatewayError, Problem
from phonestatus.numbers import Mask

UNKNOWN_CARRIER = "UNKNOW"
SERIAL_ID_DIGITS = 13
# The legacy attribution reports the 7-digit number block (e.g. 1511234) as its segment.
LEGACY_SEGMENT_DIGITS = 7


def serial_id(request_id: str) -> str:
    """Return a 13-digit serial number derived from the RequestId, like ``1100000000000``."""
    return str(uuid.UUID(request_id).int % 10**SERIAL_ID_DIGITS).zfill(SERIAL_ID_DIGITS)


async def handle_describe_status(call: ActionCall) -> ActionResult:
    dialect = Dialect.LEGACY
    text = required(call, "PhoneNumber", dialect)
    subject = read_subject(text, Mask.NORMAL, dialect, name="PhoneNumber")

    result = await call.engine.query(subject, Scene.LEGACY)

    refused = refusal(result, subject, dialect)
    if refused is not None:
        return refused
    phone_status = {
        "Status": result.scene_status or "UNKNOWN",
        "SerialId": serial_id(call.request_id),
        "Carrier": result.carrier.value if result.carrier is not None else UNKNOWN_CARRIER,
    }
    return answered(result, subject, {"PhoneStatus": phone_status}, status=result.scene_status)


async def handle_describe_attribute(call: ActionCall) -> ActionResult:
    dialect = Dialect.LEGACY
    text = required(call, "PhoneNumber", dialect)
    subject = read_subject(text, Mask.NORMAL, dialect, name="PhoneNumber")

    result = await call.engine.query(subject, Scene.ATTRIBUTE)

    refused = refusal(result, subject, dialect)
    if refused is not None:
        return refused
    if subject.number is None or result.segment_prefix is None:
        raise GatewayError.business(Problem.NUMBER_NOT_FOUND, dialect)
    fields = attribution_fields(result, number_segment=int(subject.number[:LEGACY_SEGMENT_DIGITS]))
    return answered(result, subject, {"PhoneNumberAttribute": fields}, status=None)


LEGACY_ACTIONS = (
    ActionSpec(
        "DescribePhoneNumberStatus", handle_describe_status, Dialect.LEGACY, takes_auth_code=False
    ),
    ActionSpec(
        "DescribePhoneNumberAttribute",
        handle_describe_attribute,
        Dialect.LEGACY,
        takes_auth_code=False,
    ),
)
