from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus.accounts import service
from phonestatus.accounts.actions import (
    ATTRIBUTE_ACTIONS,
    STATUS_ACTIONS,
    STATUS_AND_ATTRIBUTE_ACTIONS,
)
from phonestatus.accounts.crypto import SecretCipher
from phonestatus.accounts.errors import (
    AccessKeyLimitReached,
    AccessKeyNotFound,
    AccountNotFound,
    AccountNotVerified,
    AccountPurged,
    AuthCodeActionMismatch,
    AuthCodeNotFound,
    InvalidAccountDetails,
    InvalidPassword,
    InvalidUserAccount,
    SecretDecryptionFailed,
    UnknownAction,
    UnknownAgreementVersion,
    UserExists,
)
from phonestatus.accounts.models import (
    AccessKey,
    AccountState,
    AuthCode,
    ConsoleUser,
    VerificationState,
)
from phonestatus.billing.purge import registered_purge_hooks
from phonestatus.clock import FrozenClock

from .conftest import START
from .factories import make_account

ACCOUNT_ID_PATTERN = re.compile(r"acc_[0-9a-f]{16}")
ACCESS_KEY_ID_PATTERN = re.compile(r"LTAI[A-Za-z0-9]{20}")
SECRET_PATTERN = re.compile(r"[A-Za-z0-9]{30}")


def unique_username() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


class TestCreateAccount:
    async def test_create_account_defaults_to_pending(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await service.create_account(session, name="Acme", clock=clock)
        await session.commit()

        assert ACCOUNT_ID_PATTERN.fullmatch(account.id)
        assert account.verification_state is VerificationState.PENDING
        assert account.verified_by is None
        assert account.state is AccountState.ACTIVE
        assert account.created_at == START

    async def test_create_account_verified_records_decision(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await service.create_account(
            session, name="Acme", verified=True, decided_by="ops", clock=clock
        )
        await session.commit()

        assert account.verification_state is VerificationState.VERIFIED
        assert account.verified_by == "ops"
        assert account.verified_at == START

    async def test_create_account_stores_contact_details(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await service.create_account(
            session, name="  Acme  ", email="ops@example.com", phone="13800138000", clock=clock
        )
        await session.commit()
        session.expunge_all()

        stored = await service.get_account(session, account.id)
        assert stored.name == "Acme"
        assert stored.email == "ops@example.com"
        assert stored.phone == "13800138000"
        assert stored.created_at == START

    @pytest.mark.parametrize(
        ("details", "field"),
        [
            ({"name": "   "}, "account name"),
            ({"name": "x" * 201}, "account name"),
            ({"name": "Acme", "email": "not-an-address"}, "email"),
            ({"name": "Acme", "email": "a@b@c"}, "email"),
            ({"name": "Acme", "phone": "138-0013-8000"}, "phone"),
            ({"name": "Acme", "phone": "1234"}, "phone"),
        ],
    )
    async def test_create_account_invalid_details_raise(
        self, session: AsyncSession, clock: FrozenClock, details: dict[str, str], field: str
    ) -> None:
        with pytest.raises(InvalidAccountDetails) as raised:
            await service.create_account(session, clock=clock, **details)

        assert raised.value.field == field

    async def test_create_account_international_phone(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await service.create_account(
            session, name="Acme", phone="+8613800138000", clock=clock
        )

        assert account.phone == "+8613800138000"


class TestGetAccount:
    async def test_get_account_missing_raises_with_id(self, session: AsyncSession) -> None:
        with pytest.raises(AccountNotFound, match="acc_missing") as raised:
            await service.get_account(session, "acc_missing")

        assert raised.value.account_id == "acc_missing"

    async def test_find_account_missing_returns_none(self, session: AsyncSession) -> None:
        assert await service.find_account(session, "acc_missing") is None

    async def test_find_account_existing(self, session: AsyncSession, clock: FrozenClock) -> None:
        account = await make_account(session, clock=clock)

        found = await service.find_account(session, account.id)

        assert found is not None
        assert found.id == account.id


class TestListAccounts:
    async def test_list_accounts_includes_created(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        first = await make_account(session, clock=clock)
        second = await make_account(session, clock=clock)

        listed = [account.id for account in await service.list_accounts(session)]

        assert first.id in listed
        assert second.id in listed


class TestVerifyAccount:
    async def test_verify_account_approve(self, session: AsyncSession, clock: FrozenClock) -> None:
        account = await make_account(session, clock=clock, verified=False)
        clock.advance(timedelta(hours=1))

        verified = await service.verify_account(session, account.id, decided_by="ops", clock=clock)
        await session.commit()

        assert verified.verification_state is VerificationState.VERIFIED
        assert verified.verified_by == "ops"
        assert verified.verified_at == START + timedelta(hours=1)

    async def test_verify_account_reject(self, session: AsyncSession, clock: FrozenClock) -> None:
        account = await make_account(session, clock=clock, verified=False)

        rejected = await service.verify_account(
            session, account.id, decided_by="ops", approve=False, clock=clock
        )

        assert rejected.verification_state is VerificationState.REJECTED
        assert not rejected.is_verified

    async def test_verify_account_missing_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(AccountNotFound):
            await service.verify_account(session, "acc_missing", decided_by="ops", clock=clock)


class TestEnableFeature:
    async def test_enable_feature_records_acceptance(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        activation = await service.enable_feature(
            session, account.id, accepted_by="alice", clock=clock
        )
        await session.commit()

        assert activation.feature == service.PHONE_STATUS_FEATURE
        assert activation.agreement_version == service.CURRENT_AGREEMENT_VERSION
        assert activation.accepted_by == "alice"
        assert activation.accepted_at == START
        assert await service.is_feature_enabled(session, account.id)

    async def test_is_feature_enabled_false_before_acceptance(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        assert not await service.is_feature_enabled(session, account.id)

    async def test_enable_feature_again_keeps_first_record(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)
        await service.enable_feature(session, account.id, accepted_by="alice", clock=clock)
        await session.commit()
        clock.advance(timedelta(days=1))

        again = await service.enable_feature(session, account.id, accepted_by="bob", clock=clock)
        await session.commit()

        assert again.accepted_by == "alice"
        assert len(await service.list_feature_activations(session, account.id)) == 1

    async def test_enable_feature_unverified_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock, verified=False)

        with pytest.raises(AccountNotVerified, match=account.id):
            await service.enable_feature(session, account.id, accepted_by="alice", clock=clock)

    async def test_enable_feature_unknown_version_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(UnknownAgreementVersion, match="version 99"):
            await service.enable_feature(
                session, account.id, accepted_by="alice", agreement_version=99, clock=clock
            )

    async def test_enable_feature_missing_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(AccountNotFound):
            await service.enable_feature(session, "acc_missing", accepted_by="a", clock=clock)


class TestCreateAccessKey:
    async def test_create_access_key_formats(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)

        access_key, secret = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        assert ACCESS_KEY_ID_PATTERN.fullmatch(access_key.id)
        assert SECRET_PATTERN.fullmatch(secret)
        assert access_key.enabled
        assert access_key.created_at == START
        assert access_key.last_used_at is None

    async def test_create_access_key_stores_ciphertext_only(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, secret = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        stored = await session.scalar(
            sa.select(AccessKey.secret_ciphertext).where(AccessKey.id == access_key.id)
        )

        assert stored is not None
        assert secret.encode() not in stored
        assert cipher.decrypt(stored, associated_data=access_key.id.encode()) == secret

    async def test_create_access_key_third_raises(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        for _ in range(service.ACCESS_KEY_LIMIT):
            await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
            await session.commit()

        with pytest.raises(AccessKeyLimitReached) as raised:
            await service.create_access_key(session, account.id, cipher=cipher, clock=clock)

        assert raised.value.limit == 2
        assert raised.value.account_id == account.id

    async def test_create_access_key_counts_disabled_keys(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        for _ in range(2):
            access_key, _ = await service.create_access_key(
                session, account.id, cipher=cipher, clock=clock
            )
            await service.set_access_key_enabled(session, access_key.id, False)
            await session.commit()

        with pytest.raises(AccessKeyLimitReached):
            await service.create_access_key(session, account.id, cipher=cipher, clock=clock)

    async def test_create_access_key_after_delete_succeeds(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        first, _ = await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
        await session.commit()
        await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
        await session.commit()
        await service.delete_access_key(session, first.id)
        await session.commit()

        third, _ = await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
        await session.commit()

        remaining = await service.list_access_keys(session, account.id)
        assert len(remaining) == 2
        assert third.id in {access_key.id for access_key in remaining}

    async def test_create_access_key_missing_account_raises(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        with pytest.raises(AccountNotFound, match="acc_missing"):
            await service.create_access_key(session, "acc_missing", cipher=cipher, clock=clock)

    async def test_create_access_key_purged_account_raises(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        account.state = AccountState.PURGED
        await session.commit()

        with pytest.raises(AccountPurged):
            await service.create_access_key(session, account.id, cipher=cipher, clock=clock)


class TestResolveAccessKey:
    async def test_resolve_access_key_returns_secret(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, secret = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        resolved = await service.resolve_access_key(session, access_key.id, cipher=cipher)

        assert resolved == service.ResolvedAccessKey(
            access_key_id=access_key.id, account_id=account.id, secret=secret, enabled=True
        )

    async def test_resolve_access_key_unknown_returns_none(
        self, session: AsyncSession, cipher: SecretCipher
    ) -> None:
        assert await service.resolve_access_key(session, "LTAInotakey", cipher=cipher) is None

    @pytest.mark.parametrize("access_key_id", ["", "L" * 33])
    async def test_resolve_access_key_malformed_returns_none(
        self, session: AsyncSession, cipher: SecretCipher, access_key_id: str
    ) -> None:
        assert await service.resolve_access_key(session, access_key_id, cipher=cipher) is None

    async def test_resolve_access_key_disabled_reports_state(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await service.set_access_key_enabled(session, access_key.id, False)
        await session.commit()

        resolved = await service.resolve_access_key(session, access_key.id, cipher=cipher)

        assert resolved is not None
        assert resolved.enabled is False

    async def test_resolve_access_key_other_secret_key_raises(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        with pytest.raises(SecretDecryptionFailed, match=access_key.id):
            await service.resolve_access_key(
                session, access_key.id, cipher=SecretCipher(b"another-secret-key")
            )

    async def test_resolve_access_key_swapped_ciphertext_raises(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        first, _ = await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
        second, _ = await service.create_access_key(session, account.id, cipher=cipher, clock=clock)
        # Copying one key's ciphertext onto the other must not lend it the secret.
        second.secret_ciphertext = first.secret_ciphertext
        await session.commit()

        with pytest.raises(SecretDecryptionFailed):
            await service.resolve_access_key(session, second.id, cipher=cipher)

    def test_resolved_access_key_repr_hides_secret(self) -> None:
        resolved = service.ResolvedAccessKey(
            access_key_id="LTAIx", account_id="acc_x", secret="TopSecretValue", enabled=True
        )

        assert "TopSecretValue" not in repr(resolved)
        assert "LTAIx" in repr(resolved)


class TestTouchAccessKey:
    async def _key(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> AccessKey:
        account = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()
        return access_key

    async def _last_used(self, session: AsyncSession, access_key_id: str) -> object:
        return await session.scalar(
            sa.select(AccessKey.last_used_at).where(AccessKey.id == access_key_id)
        )

    async def test_touch_access_key_sets_last_used(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        access_key = await self._key(session, clock, cipher)
        clock.advance(timedelta(minutes=5))

        await service.touch_access_key(session, access_key.id, clock=clock)
        await session.commit()

        assert await self._last_used(session, access_key.id) == START + timedelta(minutes=5)

    async def test_touch_access_key_within_interval_keeps_time(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        access_key = await self._key(session, clock, cipher)
        await service.touch_access_key(session, access_key.id, clock=clock)
        await session.commit()
        clock.advance(timedelta(seconds=30))

        await service.touch_access_key(session, access_key.id, clock=clock)
        await session.commit()

        assert await self._last_used(session, access_key.id) == START

    async def test_touch_access_key_after_interval_updates(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        access_key = await self._key(session, clock, cipher)
        await service.touch_access_key(session, access_key.id, clock=clock)
        await session.commit()
        clock.advance(timedelta(seconds=61))

        await service.touch_access_key(session, access_key.id, clock=clock)
        await session.commit()

        assert await self._last_used(session, access_key.id) == START + timedelta(seconds=61)


class TestSetAccessKeyEnabled:
    async def test_set_access_key_enabled_round_trip(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        await service.set_access_key_enabled(session, access_key.id, False)
        await session.commit()
        disabled = await service.resolve_access_key(session, access_key.id, cipher=cipher)
        await service.set_access_key_enabled(session, access_key.id, True)
        await session.commit()
        enabled = await service.resolve_access_key(session, access_key.id, cipher=cipher)

        assert disabled is not None
        assert not disabled.enabled
        assert enabled is not None
        assert enabled.enabled

    async def test_set_access_key_enabled_missing_raises(self, session: AsyncSession) -> None:
        with pytest.raises(AccessKeyNotFound, match="LTAImissing"):
            await service.set_access_key_enabled(session, "LTAImissing", False)


class TestDeleteAccessKey:
    async def test_delete_access_key_removes_it(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await session.commit()

        await service.delete_access_key(session, access_key.id)
        await session.commit()

        assert await service.resolve_access_key(session, access_key.id, cipher=cipher) is None

    async def test_delete_access_key_missing_raises(self, session: AsyncSession) -> None:
        with pytest.raises(AccessKeyNotFound):
            await service.delete_access_key(session, "LTAImissing")


class TestCreateAuthCode:
    async def test_create_auth_code_without_actions(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        auth_code = await service.create_auth_code(session, account.id, clock=clock)
        await session.commit()

        assert re.fullmatch(r"[A-Za-z0-9]{12}", auth_code.code)
        assert auth_code.actions == []
        assert auth_code.created_at == START

    async def test_create_auth_code_deduplicates_actions(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        auth_code = await service.create_auth_code(
            session,
            account.id,
            actions=["PhoneNumberStatusForSms", "PhoneNumberStatusForSms", "DescribeEmptyNumber"],
            clock=clock,
        )
        await session.commit()
        session.expunge_all()

        stored = await session.get(AuthCode, auth_code.code)
        assert stored is not None
        assert stored.actions == ["PhoneNumberStatusForSms", "DescribeEmptyNumber"]

    async def test_create_auth_code_unknown_action_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(UnknownAction, match="'SendSms'"):
            await service.create_auth_code(session, account.id, actions=["SendSms"], clock=clock)

    async def test_create_auth_code_missing_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(AccountNotFound):
            await service.create_auth_code(session, "acc_missing", clock=clock)


class TestCheckAuthCode:
    async def _code(
        self, session: AsyncSession, clock: FrozenClock, actions: tuple[str, ...] = ()
    ) -> AuthCode:
        account = await make_account(session, clock=clock)
        auth_code = await service.create_auth_code(
            session, account.id, actions=actions, clock=clock
        )
        await session.commit()
        return auth_code

    @pytest.mark.parametrize("action", sorted(STATUS_AND_ATTRIBUTE_ACTIONS))
    async def test_check_auth_code_empty_covers_status_and_attribution(
        self, session: AsyncSession, clock: FrozenClock, action: str
    ) -> None:
        auth_code = await self._code(session, clock)

        await service.check_auth_code(session, auth_code.account_id, auth_code.code, action)

    async def test_check_auth_code_empty_excludes_other_actions(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        auth_code = await self._code(session, clock)

        with pytest.raises(AuthCodeActionMismatch, match="DescribeEmptyNumber"):
            await service.check_auth_code(
                session, auth_code.account_id, auth_code.code, "DescribeEmptyNumber"
            )

    async def test_check_auth_code_named_action_allowed(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        auth_code = await self._code(session, clock, ("PhoneNumberStatusForSms",))

        await service.check_auth_code(
            session, auth_code.account_id, auth_code.code, "PhoneNumberStatusForSms"
        )

    async def test_check_auth_code_unnamed_action_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        auth_code = await self._code(session, clock, ("PhoneNumberStatusForSms",))

        with pytest.raises(AuthCodeActionMismatch) as raised:
            await service.check_auth_code(
                session, auth_code.account_id, auth_code.code, "PhoneNumberStatusForReal"
            )

        assert raised.value.action == "PhoneNumberStatusForReal"

    async def test_check_auth_code_unknown_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(AuthCodeNotFound):
            await service.check_auth_code(
                session, account.id, "NoSuchCode00", "PhoneNumberStatusForReal"
            )

    async def test_check_auth_code_other_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        auth_code = await self._code(session, clock)
        other = await make_account(session, clock=clock)

        with pytest.raises(AuthCodeNotFound):
            await service.check_auth_code(
                session, other.id, auth_code.code, "PhoneNumberStatusForReal"
            )

    async def test_check_auth_code_revoked_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        auth_code = await self._code(session, clock)
        await service.revoke_auth_code(session, auth_code.code, clock=clock)
        await session.commit()

        with pytest.raises(AuthCodeNotFound):
            await service.check_auth_code(
                session, auth_code.account_id, auth_code.code, "PhoneNumberStatusForReal"
            )

    async def test_check_auth_code_overlong_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(AuthCodeNotFound):
            await service.check_auth_code(
                session, account.id, "x" * 100, "PhoneNumberStatusForReal"
            )

    def test_action_sets_partition(self) -> None:
        assert STATUS_ACTIONS.isdisjoint(ATTRIBUTE_ACTIONS)
        assert "PhoneNumberStatusForReal" in STATUS_AND_ATTRIBUTE_ACTIONS
        assert "DescribePhoneNumberOperatorAttribute" in STATUS_AND_ATTRIBUTE_ACTIONS


class TestListAuthCodes:
    async def test_list_auth_codes_excludes_revoked(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)
        kept = await service.create_auth_code(session, account.id, clock=clock)
        revoked = await service.create_auth_code(session, account.id, clock=clock)
        await service.revoke_auth_code(session, revoked.code, clock=clock)
        await session.commit()

        codes = await service.list_auth_codes(session, account.id)
        records = await service.list_auth_code_records(session, account.id)

        assert codes == [kept.code]
        assert {record.code for record in records} == {kept.code, revoked.code}


class TestRevokeAuthCode:
    async def test_revoke_auth_code_twice_keeps_first_time(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)
        auth_code = await service.create_auth_code(session, account.id, clock=clock)
        await service.revoke_auth_code(session, auth_code.code, clock=clock)
        await session.commit()
        clock.advance(timedelta(hours=1))

        again = await service.revoke_auth_code(session, auth_code.code, clock=clock)

        assert again.revoked_at == START

    async def test_revoke_auth_code_missing_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(AuthCodeNotFound):
            await service.revoke_auth_code(session, "NoSuchCode00", clock=clock)


class TestCreateUser:
    async def test_create_user_hashes_password(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)
        username = unique_username()

        user = await service.create_user(
            session, account.id, username=username, password="correct horse", clock=clock
        )
        await session.commit()

        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert user.account_id == account.id
        assert not user.is_operator

    async def test_create_user_operator_has_no_account(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        user = await service.create_user(
            session,
            None,
            username=unique_username(),
            password="correct horse",
            is_operator=True,
            clock=clock,
        )
        await session.commit()

        assert user.is_operator
        assert user.account_id is None

    async def test_create_user_operator_with_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(InvalidUserAccount, match="operator belongs to no account"):
            await service.create_user(
                session,
                account.id,
                username=unique_username(),
                password="correct horse",
                is_operator=True,
                clock=clock,
            )

    async def test_create_user_customer_without_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(InvalidUserAccount, match="needs an account id"):
            await service.create_user(
                session, None, username=unique_username(), password="correct horse", clock=clock
            )

    async def test_create_user_duplicate_username_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)
        username = unique_username()
        await service.create_user(
            session, account.id, username=username, password="correct horse", clock=clock
        )
        await session.commit()

        with pytest.raises(UserExists, match=username):
            await service.create_user(
                session, account.id, username=username, password="other password", clock=clock
            )

    async def test_create_user_short_password_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(InvalidPassword, match="at least 8"):
            await service.create_user(
                session, account.id, username=unique_username(), password="short", clock=clock
            )

    @pytest.mark.parametrize("username", ["ab", "has space", "-leading", "x" * 151])
    async def test_create_user_invalid_username_raises(
        self, session: AsyncSession, clock: FrozenClock, username: str
    ) -> None:
        account = await make_account(session, clock=clock)

        with pytest.raises(InvalidUserAccount, match="username"):
            await service.create_user(
                session, account.id, username=username, password="correct horse", clock=clock
            )

    async def test_create_user_missing_account_raises(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        with pytest.raises(AccountNotFound):
            await service.create_user(
                session,
                "acc_missing",
                username=unique_username(),
                password="correct horse",
                clock=clock,
            )


class TestAuthenticateUser:
    async def _user(self, session: AsyncSession, clock: FrozenClock) -> ConsoleUser:
        account = await make_account(session, clock=clock)
        user = await service.create_user(
            session, account.id, username=unique_username(), password="correct horse", clock=clock
        )
        await session.commit()
        return user

    async def test_authenticate_user_right_password(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        user = await self._user(session, clock)

        authenticated = await service.authenticate_user(session, user.username, "correct horse")

        assert authenticated is not None
        assert authenticated.id == user.id

    async def test_authenticate_user_wrong_password(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        user = await self._user(session, clock)

        assert await service.authenticate_user(session, user.username, "wrong horse") is None

    async def test_authenticate_user_unknown_username(self, session: AsyncSession) -> None:
        assert await service.authenticate_user(session, "nobody-here", "correct horse") is None

    async def test_authenticate_user_overlong_password(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        user = await self._user(session, clock)

        assert await service.authenticate_user(session, user.username, "x" * 5000) is None

    async def test_authenticate_user_rehashes_weak_hash(
        self, session: AsyncSession, clock: FrozenClock
    ) -> None:
        user = await self._user(session, clock)
        weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse")
        user.password_hash = weak
        await session.commit()

        authenticated = await service.authenticate_user(session, user.username, "correct horse")
        await session.commit()

        assert authenticated is not None
        assert authenticated.password_hash != weak
        assert authenticated.password_hash.startswith("$argon2id$")


class TestAccountDeletion:
    async def test_delete_account_cascades(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock, feature=True)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await service.create_auth_code(session, account.id, clock=clock)
        await service.create_user(
            session, account.id, username=unique_username(), password="correct horse", clock=clock
        )
        await session.commit()
        session.expunge_all()

        await session.execute(sa.text("DELETE FROM accounts WHERE id = :id"), {"id": account.id})
        await session.commit()

        assert await service.resolve_access_key(session, access_key.id, cipher=cipher) is None
        assert await service.list_auth_code_records(session, account.id) == []
        assert not await service.is_feature_enabled(session, account.id)
        users = await session.scalar(
            sa.select(sa.func.count())
            .select_from(ConsoleUser)
            .where(ConsoleUser.account_id == account.id)
        )
        assert users == 0


class TestPurgeAccountCredentials:
    async def test_purge_account_credentials_deletes_keys_and_codes(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        account = await make_account(session, clock=clock, feature=True)
        access_key, _ = await service.create_access_key(
            session, account.id, cipher=cipher, clock=clock
        )
        await service.create_auth_code(session, account.id, clock=clock)
        user = await service.create_user(
            session, account.id, username=unique_username(), password="correct horse", clock=clock
        )
        await session.commit()

        await service.purge_account_credentials(session, account.id)
        await session.commit()

        assert await service.resolve_access_key(session, access_key.id, cipher=cipher) is None
        assert await service.list_auth_code_records(session, account.id) == []
        assert await service.is_feature_enabled(session, account.id)
        assert await session.get(ConsoleUser, user.id) is not None

    async def test_purge_account_credentials_spares_other_accounts(
        self, session: AsyncSession, clock: FrozenClock, cipher: SecretCipher
    ) -> None:
        purged = await make_account(session, clock=clock)
        kept = await make_account(session, clock=clock)
        access_key, _ = await service.create_access_key(
            session, kept.id, cipher=cipher, clock=clock
        )
        await session.commit()

        await service.purge_account_credentials(session, purged.id)
        await session.commit()

        assert await service.resolve_access_key(session, access_key.id, cipher=cipher) is not None

    def test_purge_account_credentials_is_a_billing_purge_hook(self) -> None:
        assert service.purge_account_credentials in registered_purge_hooks()
