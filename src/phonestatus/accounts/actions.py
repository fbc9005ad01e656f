"""Action names an AuthCode can be issued for."""

from __future__ import annotations

# The status actions and the attribution actions that take an AuthCode. An
# AuthCode issued with no actions is valid for exactly these.
STATUS_ACTIONS = frozenset(
    {
        "PhoneNumberStatusForReal",
        "PhoneNumberStatusForSms",
        "PhoneNumberStatusForVoice",
        "PhoneNumberStatusForAccount",
        "PhoneNumberStatusForPublic",
        "PhoneNumberStatusForVirtual",
    }
)
ATTRIBUTE_ACTIONS = frozenset(
    {
        "DescribePhoneNumberOperatorAttribute",
        "DescribeMobileOperatorAttribute",
    }
)
STATUS_AND_ATTRIBUTE_ACTIONS = STATUS_ACTIONS | ATTRIBUTE_ACTIONS

# Other Dytnsapi 2020-02-17 actions that take an AuthCode. A code covers them
# only when they are named at issue time.
OTHER_AUTH_CODE_ACTIONS = frozenset(
    {
        "DescribeEmptyNumber",
        "InvalidPhoneNumberFilter",
        "DescribePhoneNumberOnlineTime",
        "QueryPhoneNumberOnlineTime",
    }
)
AUTH_CODE_ACTIONS = STATUS_AND_ATTRIBUTE_ACTIONS | OTHER_AUTH_CODE_ACTIONS
