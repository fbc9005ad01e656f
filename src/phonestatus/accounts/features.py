"""Feature activation: accepting a versioned service agreement enables a feature."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts.agreements import (
    CURRENT_AGREEMENT_VERSION,
    PHONE_STATUS_FEATURE,
    available_versions,
)
from phonestatus.accounts.errors import AccountNotVerified, UnknownAgreementVersion
from phonestatus.accounts.models import FeatureActivation
from phonestatus.accounts.registration import ensure_not_purged, get_account
from phonestatus.clock import Clock


async def enable_feature(
    session: AsyncSession,
    account_id: str,
    *,
    accepted_by: str,
    agreement_version: int = CURRENT_AGREEMENT_VERSION,
    clock: Clock,
    feature: str = PHONE_STATUS_FEATURE,
) -> FeatureActivation:
    """Enable ``feature`` by recording acceptance of an agreement version.

    The account must have passed real-name verification. Accepting a version
    the account already accepted returns the existing record.
    """
    versions = available_versions(feature)
    if agreement_version not in versions:
        raise UnknownAgreementVersion(agreement_version, versions)
    account = await get_account(session, account_id)
    ensure_not_purged(account)
    if not account.is_verified:
        raise AccountNotVerified(account_id)

    existing = await session.get(FeatureActivation, (account_id, feature, agreement_version))
    if existing is not None:
        return existing

    activation = FeatureActivation(
        account_id=account_id,
        feature=feature,
        agreement_version=agreement_version,
        accepted_by=accepted_by,
        accepted_at=clock.now(),
    )
    session.add(activation)
    await session.flush()
    return activation


async def is_feature_enabled(
    session: AsyncSession, account_id: str, feature: str = PHONE_STATUS_FEATURE
) -> bool:
    # NOTE: acceptance of any shipped agreement version keeps the feature on;
    # publishing a new version does not switch existing accounts off.
    statement = (
        sa.select(FeatureActivation.account_id)
        .where(FeatureActivation.account_id == account_id, FeatureActivation.feature == feature)
        .limit(1)
    )
    return (await session.scalar(statement)) is not None


async def list_feature_activations(
    session: AsyncSession, account_id: str
) -> list[FeatureActivation]:
    statement = (
        sa.select(FeatureActivation)
        .where(FeatureActivation.account_id == account_id)
        .order_by(FeatureActivation.accepted_at)
    )
    return list(await session.scalars(statement))
