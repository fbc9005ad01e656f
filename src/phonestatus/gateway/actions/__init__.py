"""The actions the gateway serves, by wire name; one module per action family."""

from __future__ import annotations

from phonestatus.gateway.actions.attribute import ATTRIBUTE_ACTIONS
from phonestatus.gateway.actions.authcode import AUTH_CODE_ACTIONS
from phonestatus.gateway.actions.base import ActionCall, ActionResult, ActionSpec
from phonestatus.gateway.actions.empty import EMPTY_ACTIONS
from phonestatus.gateway.actions.legacy import LEGACY_ACTIONS
from phonestatus.gateway.actions.status import STATUS_ACTIONS

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        *STATUS_ACTIONS,
        *ATTRIBUTE_ACTIONS,
        *LEGACY_ACTIONS,
        *EMPTY_ACTIONS,
        *AUTH_CODE_ACTIONS,
    )
}

__all__ = ["ACTIONS", "ActionCall", "ActionResult", "ActionSpec"]
