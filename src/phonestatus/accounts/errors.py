"""Errors raised by the accounts service.

Every error carries the ids involved and never a secret or a password::

    AccountsError
    ├── AccountNotFound(account_id)
    ├── InvalidAccountDetails(field, value, expected)
    ├── AccountNotVerified(account_id)
    ├── AccountPurged(account_id)
    ├── FeatureNotEnabled(account_id, feature)
    ├── AgreementNotAccepted(account_id)
    ├── UnknownAgreementVersion(version)
    ├── AccessKeyNotFound(access_key_id)
    ├── AccessKeyLimitReached(account_id, limit)
    ├── SecretDecryptionFailed(access_key_id)
    ├── AuthCodeNotFound(code)
    ├── AuthCodeActionMismatch(code, action)
    ├── UnknownAction(action)
    ├── UserExists(username)
    ├── InvalidPassword(reason)
    └── InvalidUserAccount(reason)
"""

from __future__ import annotations

from collections.abc import Iterable


class AccountsError(Exception):
    """Base class of every error the accounts service raises."""


class AccountNotFound(AccountsError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} not found")


class InvalidAccountDetails(AccountsError, ValueError):
    def __init__(self, field: str, value: str, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {field} {value!r}; expected {expected}")


class AccountNotVerified(AccountsError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(
            f"account {account_id!r} has not passed real-name verification; "
            "verify it first (`phonestatus account verify`)"
        )


class AccountPurged(AccountsError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} has been purged and cannot be changed")


class FeatureNotEnabled(AccountsError):
    def __init__(self, account_id: str, feature: str) -> None:
        self.account_id = account_id
        self.feature = feature
        super().__init__(f"feature {feature!r} is not enabled for account {account_id!r}")


class AgreementNotAccepted(AccountsError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(
            f"the service agreement must be accepted to enable the feature for account {account_id!r}"
        )


class UnknownAgreementVersion(AccountsError):
    def __init__(self, version: int, available: Iterable[int]) -> None:
        self.version = version
        self.available = tuple(sorted(available))
        listed = ", ".join(str(item) for item in self.available)
        super().__init__(
            f"service agreement version {version} does not exist; expected one of {listed}"
        )


class AccessKeyNotFound(AccountsError):
    def __init__(self, access_key_id: str) -> None:
        self.access_key_id = access_key_id
        super().__init__(f"AccessKey {access_key_id!r} not found")


class AccessKeyLimitReached(AccountsError):
    def __init__(self, account_id: str, limit: int) -> None:
        self.account_id = account_id
        self.limit = limit
        super().__init__(
            f"account {account_id!r} already has {limit} AccessKeys, the maximum; "
            "delete one before creating another"
        )


class SecretDecryptionFailed(AccountsError):
    """The stored secret does not decrypt with the configured secret key.

    Usually ``PHONESTATUS_SECRET_KEY`` changed after the AccessKey was created.
    """

    def __init__(self, access_key_id: str) -> None:
        self.access_key_id = access_key_id
        super().__init__(
            f"the secret of AccessKey {access_key_id!r} cannot be decrypted; "
            "check that PHONESTATUS_SECRET_KEY is the key it was created with"
        )


class AuthCodeNotFound(AccountsError):
    """The code is unknown, revoked, or issued to another account."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"AuthCode {code!r} not found or revoked")


class AuthCodeActionMismatch(AccountsError):
    def __init__(self, code: str, action: str) -> None:
        self.code = code
        self.action = action
        super().__init__(f"AuthCode {code!r} is not valid for action {action!r}")


class UnknownAction(AccountsError):
    def __init__(self, action: str, known: Iterable[str]) -> None:
        self.action = action
        listed = ", ".join(sorted(known))
        super().__init__(f"unknown action {action!r}; expected one of {listed}")


class UserExists(AccountsError):
    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"user {username!r} already exists")


class InvalidPassword(AccountsError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid password: {reason}")


class InvalidUserAccount(AccountsError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
