"""Encryption at rest for AccessKey secrets.

A secret is sealed with AES-256-GCM (NIST SP 800-38D) under a key derived
from ``PHONESTATUS_SECRET_KEY`` with HKDF-SHA256 (RFC 5869). The caller passes
associated data, the AccessKey id, so a ciphertext copied onto another
AccessKey's row fails to decrypt instead of lending that key its secret.

Stored layout: one format byte (``0x01``), a 12-byte random nonce, then the
ciphertext with its 16-byte tag appended.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
# HKDF "info" separates this key from other keys derived from the same
# secret key, such as the console session signing key.
HKDF_INFO = b"phonestatus/accesskey-secret/aes-256-gcm/v1"


class DecryptionError(Exception):
    """The ciphertext is malformed, was tampered with, or belongs to other associated data or another key."""


def derive_key(secret_key: bytes, *, info: bytes, length: int = KEY_BYTES) -> bytes:
    """Derive a purpose-specific key from the service secret key with HKDF-SHA256."""
    if not secret_key:
        raise ValueError("secret_key is empty; a non-empty secret key is required")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret_key)


class SecretCipher:
    """Seals and opens short secrets with AES-256-GCM."""

    def __init__(self, secret_key: bytes) -> None:
        self._aead = AESGCM(derive_key(secret_key, info=HKDF_INFO))

    def encrypt(self, plaintext: str, *, associated_data: bytes) -> bytes:
        # A random 96-bit nonce per message is safe for far more than 2**32
        # messages under one key, the bound SP 800-38D sets for random nonces.
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated_data)
        return FORMAT_V1 + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> str:
        """Return the plaintext; raise ``DecryptionError`` when it does not authenticate."""
        if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[:1] != FORMAT_V1:
            raise DecryptionError("ciphertext is truncated or has an unknown format byte")
        nonce = ciphertext[1 : 1 + NONCE_BYTES]
        sealed = ciphertext[1 + NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, associated_data)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc
        return plaintext.decode()
