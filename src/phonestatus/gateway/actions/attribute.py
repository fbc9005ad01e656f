"""Attribution: DescribePhoneNumberOperatorAttribute (plain or hashed number).

``Data`` carries carrier names in Chinese (中国移动, ...), ``Province`` and
``City``, ``NumberSegment`` as a JSON integer (the segment prefix, e.g. 139)
and ``IsNumberPortability`` as a JSON boolean, the types the Go and Java
models declare.
"""

from __future__ import annotations

from phonestatus.detection import QueryResult, Scene
from phonestatus.gateway.actions.base import (
    ActionCall,
    ActionResult,
    ActionSpec,
    answered,
    read_mask,
    read_subject,
    refusal,
    required,
    without_none,
)
from phonestatus.gateway.errors import Dialect, GatewayError, Problem


def attribution_fields(result: QueryResult, *, number_segment: int) -> dict[str, object]:
    """Return the attribution fields shared by the current and the legacy action."""
    return without_none(
        {
            "BasicCarrier": result.basic_carrier.label_zh if result.basic_carrier else None,
            "Carrier": result.carrier.label_zh if result.carrier else None,
            "Province": result.province,
            "City": result.city,
            "NumberSegment": number_segment,
            "IsNumberPortability": result.is_ported,
        }
    )


async def handle_operator_attribute(call: ActionCall) -> ActionResult:
    dialect = Dialect.ATTRIBUTE
    mask = read_mask(call, dialect)
    text = required(call, "InputNumber", dialect)
    subject = read_subject(text, mask, dialect, name="InputNumber")

    result = await call.engine.query(subject, Scene.ATTRIBUTE)

    refused = refusal(result, subject, dialect)
    if refused is not None:
        return refused
    if result.segment_prefix is None:
        # A digest that matches no known number has no segment to report.
        raise GatewayError.business(Problem.NUMBER_NOT_FOUND, dialect)
    data = attribution_fields(result, number_segment=int(result.segment_prefix))
    return answered(result, subject, {"Data": data}, status=None)


ATTRIBUTE_ACTIONS = (
    ActionSpec(
        "DescribePhoneNumberOperatorAttribute", handle_operator_attribute, Dialect.ATTRIBUTE
    ),
)
