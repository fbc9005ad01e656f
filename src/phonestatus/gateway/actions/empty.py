"""DescribeEmptyNumber: predicts whether a number is empty (EMPTY, NORMAL, SUSPECT_EMPTY, UNKNOWN).

``Data.Number`` echoes the number as normalised (11 digits, or the lowercase
digest). An invalid number is the body code ``InvalidPhoneNumber.Check`` in
an HTTP 200 response.
"""

from __future__ import annotations

from phonestatus.detection import Scene
from phonestatus.gateway.actions.base import (
    ActionCall,
    ActionResult,
    ActionSpec,
    answered,
    read_mask,
    read_subject,
    refusal,
    required,
)
from phonestatus.gateway.errors import Dialect


async def handle_empty_number(call: ActionCall) -> ActionResult:
    dialect = Dialect.EMPTY
    mask = read_mask(call, dialect)
    text = required(call, "InputNumber", dialect)
    subject = read_subject(text, mask, dialect, name="InputNumber")

    result = await call.engine.query(subject, Scene.EMPTY)

    refused = refusal(result, subject, dialect)
    if refused is not None:
        return refused
    status = result.scene_status or "UNKNOWN"
    data = {"Number": subject.value, "Status": status}
    return answered(result, subject, {"Data": data}, status=status)


EMPTY_ACTIONS = (ActionSpec("DescribeEmptyNumber", handle_empty_number, Dialect.EMPTY),)
