"""Accounts service: accounts, verification, feature activation, AccessKeys, AuthCodes, users.

Every function takes an ``AsyncSession`` first and never commits: the caller
owns the unit of work. ``get_*`` raises when the row is missing, ``find_*``
returns None. Errors are the ``phonestatus.accounts.errors`` hierarchy.

This module is the package's public API. The functions live in one module
per concept (registration, features, access_keys, auth_codes, users) and are
imported from here.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.access_keys import (
    ACCESS_KEY_ID_PREFIX,
    ACCESS_KEY_ID_RANDOM_LENGTH,
    ACCESS_KEY_LIMIT,
    ACCESS_KEY_SECRET_LENGTH,
    TOUCH_INTERVAL,
    ResolvedAccessKey,
    create_access_key,
    delete_access_key,
    get_access_key,
    list_access_keys,
    resolve_access_key,
    set_access_key_enabled,
    touch_access_key,
)
from phonestatus.accounts.actions import STATUS_AND_ATTRIBUTE_ACTIONS
from phonestatus.accounts.agreements import CURRENT_AGREEMENT_VERSION, PHONE_STATUS_FEATURE
from phonestatus.accounts.auth_codes import (
    AUTH_CODE_LENGTH,
    check_auth_code,
    create_auth_code,
    list_auth_code_records,
    list_auth_codes,
    revoke_auth_code,
)
from phonestatus.accounts.features import (
    enable_feature,
    is_feature_enabled,
    list_feature_activations,
)
from phonestatus.accounts.models import AccessKey, AuthCode
from phonestatus.accounts.registration import (
    create_account,
    find_account,
    get_account,
    list_accounts,
    new_account_id,
    set_rate_limit,
    verify_account,
)
from phonestatus.accounts.users import authenticate_user, create_user
from phonestatus.billing.purge import register_purge_hook

__all__ = [
    "ACCESS_KEY_ID_PREFIX",
    "ACCESS_KEY_ID_RANDOM_LENGTH",
    "ACCESS_KEY_LIMIT",
    "ACCESS_KEY_SECRET_LENGTH",
    "AUTH_CODE_LENGTH",
    "CURRENT_AGREEMENT_VERSION",
    "PHONE_STATUS_FEATURE",
    "STATUS_AND_ATTRIBUTE_ACTIONS",
    "TOUCH_INTERVAL",
    "ResolvedAccessKey",
    "authenticate_user",
    "check_auth_code",
    "create_access_key",
    "create_account",
    "create_auth_code",
    "create_user",
    "delete_access_key",
    "enable_feature",
    "find_account",
    "get_access_key",
    "get_account",
    "is_feature_enabled",
    "list_access_keys",
    "list_accounts",
    "list_auth_code_records",
    "list_auth_codes",
    "list_feature_activations",
    "new_account_id",
    "purge_account_credentials",
    "resolve_access_key",
    "revoke_auth_code",
    "set_access_key_enabled",
    "set_rate_limit",
    "touch_access_key",
    "verify_account",
]


async def purge_account_credentials(session: AsyncSession, account_id: str) -> None:
    """Delete the account's AccessKeys and AuthCodes when billing purges it.

    A purged account can never call the API again, so its credentials go
    with its data. The account row, its console users and its agreement
    acceptances stay, next to the bills that billing keeps.
    """
    await session.execute(sa.delete(AccessKey).where(AccessKey.account_id == account_id))
    await session.execute(sa.delete(AuthCode).where(AuthCode.account_id == account_id))


register_purge_hook(purge_account_credentials)
