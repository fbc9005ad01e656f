"""The status family: PhoneNumberStatusForReal, ForSms, ForVoice, ForAccount, ForPublic, ForVirtual.

Request: ``AuthCode``, ``InputNumber`` (11 digits, or a digest under ``Mask``),
``Mask`` (NORMAL, MD5, SHA256, SM3). ForVirtual answers
``Data.IsPrivacyNumber`` (a boolean), the others ``Data.Status`` and
``Data.Carrier``.
"""

from __future__ import annotations

from phonestatus.detection import Scene
from phonestatus.gateway.actions.base import (
    ActionCall,
    ActionHandler,
    ActionResult,
    ActionSpec,
    answered,
    read_mask,
    read_subject,
    refusal,
    required,
    without_none,
)
from phonestatus.gateway.errors import Dialect


def status_handler(scene: Scene, dialect: Dialect) -> ActionHandler:
    async def handle(call: ActionCall) -> ActionResult:
        mask = read_mask(call, dialect)
        text = required(call, "InputNumber", dialect)
        subject = read_subject(text, mask, dialect, name="InputNumber")

        result = await call.engine.query(subject, scene)

        refused = refusal(result, subject, dialect)
        if refused is not None:
            return refused
        data = without_none(
            {
                "Status": result.scene_status,
                "Carrier": result.carrier.value if result.carrier is not None else None,
            }
        )
        return answered(result, subject, {"Data": data}, status=result.scene_status)

    return handle


async def handle_for_virtual(call: ActionCall) -> ActionResult:
    dialect = Dialect.STATUS
    mask = read_mask(call, dialect)
    text = required(call, "InputNumber", dialect)
    subject = read_subject(text, mask, dialect, name="InputNumber")

    result = await call.engine.query(subject, Scene.VIRTUAL)

    refused = refusal(result, subject, dialect)
    if refused is not None:
        return refused
    data = without_none({"IsPrivacyNumber": result.is_privacy_number})
    status = None if result.is_privacy_number is None else str(result.is_privacy_number).lower()
    return answered(result, subject, {"Data": data}, status=status)


STATUS_ACTIONS = (
    ActionSpec(
        "PhoneNumberStatusForReal", status_handler(Scene.REAL, Dialect.STATUS), Dialect.STATUS
    ),
    ActionSpec(
        "PhoneNumberStatusForSms", status_handler(Scene.SMS, Dialect.STATUS), Dialect.STATUS
    ),
    ActionSpec(
        "PhoneNumberStatusForVoice", status_handler(Scene.VOICE, Dialect.VOICE), Dialect.VOICE
    ),
    ActionSpec(
        "PhoneNumberStatusForAccount",
        status_handler(Scene.ACCOUNT, Dialect.STATUS),
        Dialect.STATUS,
    ),
    ActionSpec(
        "PhoneNumberStatusForPublic",
        status_handler(Scene.PUBLIC, Dialect.PUBLIC),
        Dialect.PUBLIC,
    ),
    ActionSpec("PhoneNumberStatusForVirtual", handle_for_virtual, Dialect.STATUS),
)
