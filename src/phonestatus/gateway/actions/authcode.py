"""QueryAvailableAuthCode: the account's AuthCodes that are not revoked.

``TagId`` (int64, optional) is accepted and validated but does not filter:
phonestatus has no tags. The body adds ``Success`` (a boolean) and ``Data``
is a list of strings.
"""

from __future__ import annotations

import re

from phonestatus.accounts.service import list_auth_codes
from phonestatus.gateway.actions.base import OK, ActionCall, ActionResult, ActionSpec
from phonestatus.gateway.errors import Dialect, Failure, GatewayError

_INT64 = re.compile(r"-?[0-9]{1,19}")


async def handle_available_auth_codes(call: ActionCall) -> ActionResult:
    tag_id = call.params.get("TagId")
    if tag_id and _INT64.fullmatch(tag_id) is None:
        raise GatewayError(
            Failure.INVALID_PARAMETER,
            name="TagId",
            detail=f"Expected an integer, got {tag_id[:40]!r}.",
        )

    async with call.session_factory() as session:
        codes = await list_auth_codes(session, call.account_id)

    return ActionResult(body={"Code": OK, "Message": OK, "Success": True, "Data": codes})


AUTH_CODE_ACTIONS = (
    ActionSpec(
        "QueryAvailableAuthCode",
        handle_available_auth_codes,
        Dialect.STATUS,
        takes_auth_code=False,
    ),
)
