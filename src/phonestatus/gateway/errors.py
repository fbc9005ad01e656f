"""Every error the gateway sends, in one table: HTTP status, wire ``Code`` and ``Message``.

Exceptions::

    GatewayError                 any failure with a row in ``Failure``; the route renders it
    AuthorizationFormatError     (signing) malformed ACS3 Authorization header -> IncompleteSignature
    ParameterEncodingError       (params) undecodable parameters -> InvalidParameter

``Failure`` rows are the gateway's own protocol errors (signature, timestamp,
throttling, ...) and the business results of the actions. Business results
differ by action family, because each Dytnsapi action documents its own codes
(``EncyrptTypeIllegal`` with that spelling for most status actions,
``EncryptTypeIllegal`` for ForVoice, ``InvalidParameter`` for ForPublic,
``isv.*``/``isp.*`` codes in HTTP 200 bodies for the legacy actions).
``BUSINESS_FAILURES`` maps each domain ``Problem`` to the row for each
``Dialect``.

Choices where the reference service documents nothing:

* ``BIZ_NOT_OPEN_ERROR`` (400) when the account has not enabled the feature.
* ``Account.Arrearage`` (400) while the account is suspended for arrears, and
  ``Account.Purged`` (400) once its data has been purged.
* ``RequestFrequencyLimit`` and the legacy ``isv.*``/``isp.*`` codes travel in
  HTTP 200 bodies, like ``OperatorLimit``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum, StrEnum
from http import HTTPStatus


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One wire error. ``code`` and ``message`` may hold ``{field}`` placeholders."""

    http_status: HTTPStatus
    code: str
    message: str


_OK = HTTPStatus.OK
_BAD = HTTPStatus.BAD_REQUEST


class Failure(Enum):
    # Gateway protocol errors (Alibaba Cloud POP wording).
    ACCESS_KEY_NOT_FOUND = ErrorSpec(
        HTTPStatus.NOT_FOUND, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
    )
    ACCESS_KEY_INACTIVE = ErrorSpec(
        _BAD, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."
    )
    # Clients parse this message: the old Python SDK compares the text after the only ':'
    # with its own string-to-sign, so nothing may follow the string-to-sign.
    SIGNATURE_MISMATCH = ErrorSpec(
        _BAD,
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation. "
        "server string to sign is:{string_to_sign}",
    )
    INCOMPLETE_SIGNATURE = ErrorSpec(
        _BAD,
        "IncompleteSignature",
        "The request signature does not conform to Aliyun standards.",
    )
    INVALID_SIGNATURE_METHOD = ErrorSpec(
        _BAD, "InvalidSignatureMethod", "Specified signature method is not valid."
    )
    TIMESTAMP_FORMAT = ErrorSpec(
        _BAD,
        "InvalidTimeStamp.Format",
        "Specified time stamp or date value is not well formatted.",
    )
    TIMESTAMP_EXPIRED = ErrorSpec(
        _BAD, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
    )
    NONCE_USED = ErrorSpec(
        _BAD, "SignatureNonceUsed", "Specified signature nonce was used already."
    )
    MISSING_PARAMETER = ErrorSpec(_BAD, "Missing{name}", "{name} is mandatory for this action.")
    INVALID_PARAMETER = ErrorSpec(
        _BAD, "InvalidParameter", "Specified parameter {name} is not valid."
    )
    INVALID_FORMAT = ErrorSpec(
        _BAD, "InvalidParameter.Format", "Specified parameter format is not valid."
    )
    ACTION_NOT_FOUND = ErrorSpec(
        HTTPStatus.NOT_FOUND,
        "InvalidAction.NotFound",
        "Specified api is not found, please check your url and method.",
    )
    INVALID_VERSION = ErrorSpec(_BAD, "InvalidVersion", "Specified parameter Version is not valid.")
    UNSUPPORTED_METHOD = ErrorSpec(_BAD, "UnsupportedHTTPMethod", "This http method not supported.")
    THROTTLING_USER = ErrorSpec(
        _BAD, "Throttling.User", "Request was denied due to user flow control."
    )
    FEATURE_NOT_ENABLED = ErrorSpec(
        _BAD,
        "BIZ_NOT_OPEN_ERROR",
        "Users who have not opened this product. "
        "Enable phone number status query for this account and accept the service agreement.",
    )
    ACCOUNT_ARREARS = ErrorSpec(
        _BAD,
        "Account.Arrearage",
        "The account is suspended for arrears. "
        "Recharge enough to clear the arrears and queries resume automatically.",
    )
    ACCOUNT_PURGED = ErrorSpec(
        _BAD,
        "Account.Purged",
        "The account was purged after more than 7 days of arrears and cannot query.",
    )
    INTERNAL = ErrorSpec(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
    )
    SERVICE_UNAVAILABLE = ErrorSpec(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    )

    # Business results of the Dytnsapi actions (documented per action).
    OPERATOR_LIMIT = ErrorSpec(_OK, "OperatorLimit", "The number is limited by the operator.")
    FREQUENCY_LIMIT = ErrorSpec(
        _OK,
        "RequestFrequencyLimit",
        "The number was queried too often in a short time; retry later.",
    )
    MOBILE_NUMBER_ILLEGAL = ErrorSpec(_BAD, "MobileNumberIllegal", "Wrong format of phone number")
    MOBILE_NUMBER_TYPE_ILLEGAL = ErrorSpec(_BAD, "MobileNumberTypeIllegal", "Invalid number type.")
    MOBILE_NUMBER_TYPE_NOT_MATCH = ErrorSpec(
        _BAD, "MobileNumberTypeNotMatch", "The number and number type do not match."
    )
    # The misspelling "Encyrpt" is the documented code of most status actions.
    ENCYRPT_TYPE_ILLEGAL = ErrorSpec(
        _BAD,
        "EncyrptTypeIllegal",
        "The encryption type of the mobile phone number is illegal",
    )
    ENCRYPT_TYPE_ILLEGAL = ErrorSpec(_BAD, "EncryptTypeIllegal", "Invalid encryption type.")
    AUTH_CODE_NOT_EXIST = ErrorSpec(
        _BAD,
        "AuthCodeNotExist",
        "The label application form does not exist, please replace the authorization code.",
    )
    AUTH_CODE_ILLEGAL = ErrorSpec(_BAD, "AuthCodeIllegal", "Illegal authCode.")
    AUTH_CODE_ACTION_MISMATCH = ErrorSpec(
        _BAD,
        "AuthCodeAndApiNotMatch",
        "AuthCode和请求的Api不匹配 (the AuthCode is not bound to this action).",
    )
    BUSINESS_INVALID_PARAMETER = ErrorSpec(_BAD, "InvalidParameter", "Invalid parameter.")
    PHONE_NUMBER_NOT_FOUND = ErrorSpec(
        _BAD, "PhoneNumberNotfound", "The queried number is not found."
    )
    INVALID_PHONE_NUMBER_CHECK = ErrorSpec(
        _OK, "InvalidPhoneNumber.Check", "The phone number is invalid."
    )
    LEGACY_INVALID_PARAMETERS = ErrorSpec(
        _OK, "isv.INVALID_PARAMETERS", "The request parameters are invalid."
    )
    LEGACY_MOBILE_NUMBER_ILLEGAL = ErrorSpec(
        _OK, "isv.MOBILE_NUMBER_ILLEGAL", "Wrong format of phone number"
    )
    LEGACY_OPERATOR_LIMIT = ErrorSpec(
        _OK, "isp.OPERATOR_LIMIT", "The number is limited by the operator."
    )
    LEGACY_QPS_LIMIT = ErrorSpec(
        _OK, "isp.QPS_LIMIT", "The number was queried too often in a short time; retry later."
    )
    LEGACY_NUMBER_NON_EXISTENT = ErrorSpec(
        _OK, "isp.NUMBER_NON_EXISTENT", "The queried number is not found."
    )

    @property
    def spec(self) -> ErrorSpec:
        value: ErrorSpec = self.value
        return value


class Problem(StrEnum):
    """A business-level reason an action cannot return Code OK."""

    MISSING_PARAMETER = "missing_parameter"
    INVALID_MASK = "invalid_mask"
    MALFORMED_NUMBER = "malformed_number"
    UNSUPPORTED_NUMBER = "unsupported_number"
    DIGEST_MISMATCH = "digest_mismatch"
    AUTH_CODE_NOT_FOUND = "auth_code_not_found"
    AUTH_CODE_ACTION_MISMATCH = "auth_code_action_mismatch"
    OPERATOR_LIMIT = "operator_limit"
    FREQUENCY_LIMIT = "frequency_limit"
    NUMBER_NOT_FOUND = "number_not_found"


class Dialect(StrEnum):
    """Action families that document different codes for the same problem."""

    STATUS = "status"  # ForReal, ForSms, ForAccount, ForVirtual
    VOICE = "voice"  # ForVoice
    PUBLIC = "public"  # ForPublic
    ATTRIBUTE = "attribute"  # DescribePhoneNumberOperatorAttribute
    EMPTY = "empty"  # DescribeEmptyNumber
    LEGACY = "legacy"  # DescribePhoneNumberStatus, DescribePhoneNumberAttribute


_STATUS_FAILURES: dict[Problem, Failure] = {
    Problem.MISSING_PARAMETER: Failure.MISSING_PARAMETER,
    Problem.INVALID_MASK: Failure.ENCYRPT_TYPE_ILLEGAL,
    Problem.MALFORMED_NUMBER: Failure.MOBILE_NUMBER_ILLEGAL,
    Problem.UNSUPPORTED_NUMBER: Failure.MOBILE_NUMBER_TYPE_ILLEGAL,
    Problem.DIGEST_MISMATCH: Failure.MOBILE_NUMBER_TYPE_NOT_MATCH,
    Problem.AUTH_CODE_NOT_FOUND: Failure.AUTH_CODE_NOT_EXIST,
    Problem.AUTH_CODE_ACTION_MISMATCH: Failure.AUTH_CODE_ACTION_MISMATCH,
    Problem.OPERATOR_LIMIT: Failure.OPERATOR_LIMIT,
    Problem.FREQUENCY_LIMIT: Failure.FREQUENCY_LIMIT,
    Problem.NUMBER_NOT_FOUND: Failure.PHONE_NUMBER_NOT_FOUND,
}

BUSINESS_FAILURES: dict[Dialect, dict[Problem, Failure]] = {
    Dialect.STATUS: _STATUS_FAILURES,
    Dialect.VOICE: _STATUS_FAILURES | {Problem.INVALID_MASK: Failure.ENCRYPT_TYPE_ILLEGAL},
    Dialect.PUBLIC: _STATUS_FAILURES
    | {
        Problem.INVALID_MASK: Failure.BUSINESS_INVALID_PARAMETER,
        Problem.MALFORMED_NUMBER: Failure.BUSINESS_INVALID_PARAMETER,
        Problem.UNSUPPORTED_NUMBER: Failure.BUSINESS_INVALID_PARAMETER,
        Problem.DIGEST_MISMATCH: Failure.BUSINESS_INVALID_PARAMETER,
        Problem.AUTH_CODE_NOT_FOUND: Failure.AUTH_CODE_ILLEGAL,
    },
    Dialect.ATTRIBUTE: _STATUS_FAILURES
    | {Problem.UNSUPPORTED_NUMBER: Failure.BUSINESS_INVALID_PARAMETER},
    Dialect.EMPTY: _STATUS_FAILURES
    | {
        Problem.MALFORMED_NUMBER: Failure.INVALID_PHONE_NUMBER_CHECK,
        Problem.UNSUPPORTED_NUMBER: Failure.INVALID_PHONE_NUMBER_CHECK,
        Problem.DIGEST_MISMATCH: Failure.INVALID_PHONE_NUMBER_CHECK,
    },
    Dialect.LEGACY: {
        Problem.MISSING_PARAMETER: Failure.MISSING_PARAMETER,
        Problem.INVALID_MASK: Failure.LEGACY_INVALID_PARAMETERS,
        Problem.MALFORMED_NUMBER: Failure.LEGACY_MOBILE_NUMBER_ILLEGAL,
        Problem.UNSUPPORTED_NUMBER: Failure.LEGACY_MOBILE_NUMBER_ILLEGAL,
        Problem.DIGEST_MISMATCH: Failure.LEGACY_INVALID_PARAMETERS,
        Problem.AUTH_CODE_NOT_FOUND: Failure.AUTH_CODE_NOT_EXIST,
        Problem.AUTH_CODE_ACTION_MISMATCH: Failure.AUTH_CODE_ACTION_MISMATCH,
        Problem.OPERATOR_LIMIT: Failure.LEGACY_OPERATOR_LIMIT,
        Problem.FREQUENCY_LIMIT: Failure.LEGACY_QPS_LIMIT,
        Problem.NUMBER_NOT_FOUND: Failure.LEGACY_NUMBER_NON_EXISTENT,
    },
}


class GatewayError(Exception):
    """A failure to send to the client as an error envelope.

    ``detail`` adds a sentence naming the offending value after the table's
    message; it must never contain a secret or an expected signature.
    """

    def __init__(self, failure: Failure, *, detail: str | None = None, **fields: str) -> None:
        spec = failure.spec
        self.failure = failure
        self.http_status = spec.http_status
        self.code = spec.code.format(**fields)
        self.message = _join(spec.message.format(**fields), detail)
        super().__init__(f"{self.code}: {self.message}")

    @property
    def is_soft(self) -> bool:
        """Whether this is a business result sent with HTTP 200 and a non-OK Code."""
        return self.http_status is HTTPStatus.OK

    @classmethod
    def business(
        cls, problem: Problem, dialect: Dialect, *, detail: str | None = None, **fields: str
    ) -> GatewayError:
        return cls(BUSINESS_FAILURES[dialect][problem], detail=detail, **fields)


def _join(message: str, detail: str | None) -> str:
    if not detail:
        return message
    separator = " " if message.endswith((".", "。", ")")) else ": "
    return f"{message}{separator}{detail}"


_request_ids = random.Random()


def new_request_id() -> str:
    """Return a RequestId: a random UUID in uppercase, 36 characters like the reference gateway."""
    # Request ids identify, they do not authenticate, so the fast non-cryptographic
    # generator is enough (os.urandom costs a system call per request).
    value = _request_ids.getrandbits(128)
    value = value & ~(0xF000 << 64) | (4 << 76)  # version 4
    value = value & ~(0xC000 << 48) | (0x8000 << 48)  # RFC 4122 variant
    digits = f"{value:032X}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def recommend_text(code: str) -> str:
    """Return the ``Recommend`` hint: where the code is explained (a string, as clients expect)."""
    return f"See the error code table in the phonestatus API reference (docs/api.md) for {code}."


def error_body(error: GatewayError, *, request_id: str, host_id: str) -> dict[str, object]:
    """Return the body for an error: five string fields for HTTP 4xx/5xx, three for HTTP 200."""
    if error.is_soft:
        return {"RequestId": request_id, "Code": error.code, "Message": error.message}
    return {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": error.code,
        "Message": error.message,
        "Recommend": recommend_text(error.code),
    }
