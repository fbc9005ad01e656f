"""Argon2id password hashing for console users.

Hashing costs tens of milliseconds of CPU by design, so the async helpers run
it in a worker thread instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from phonestatus.accounts.errors import InvalidPassword

MIN_PASSWORD_LENGTH = 8
# Argon2 accepts any length; the cap keeps a request from buying seconds of CPU.
MAX_PASSWORD_LENGTH = 1024

# argon2-cffi's defaults follow RFC 9106's second recommended option (Argon2id,
# 64 MiB, 3 passes); the hash string records them, so old hashes keep verifying.
_hasher = PasswordHasher()
# Verified when the user does not exist, so a missing user costs the same time.
_DUMMY_HASH = _hasher.hash("phonestatus-dummy-password")


def check_password_policy(password: str) -> None:
    """Raise ``InvalidPassword`` when the password is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidPassword(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidPassword(f"must be at most {MAX_PASSWORD_LENGTH} characters long")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches; a None hash is checked against a dummy."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    target = password_hash if password_hash is not None else _DUMMY_HASH
    try:
        matched = await asyncio.to_thread(_hasher.verify, target, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
