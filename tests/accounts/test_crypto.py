from __future__ import annotations

import pytest

from phonestatus.accounts.crypto import (
    FORMAT_V1,
    HKDF_INFO,
    NONCE_BYTES,
    DecryptionError,
    SecretCipher,
    derive_key,
)

# RFC 5869 appendix A.3: SHA-256 with empty salt and empty info.
RFC5869_IKM = bytes.fromhex("0b" * 22)
RFC5869_OKM = bytes.fromhex(
    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
)
SECRET = "Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAB"
KEY_ID = b"LTAIabcdefghijklmnopqrst"


class TestDeriveKey:
    def test_derive_key_matches_rfc5869_vector(self) -> None:
        assert derive_key(RFC5869_IKM, info=b"", length=42) == RFC5869_OKM

    def test_derive_key_info_separates_keys(self) -> None:
        assert derive_key(b"secret", info=HKDF_INFO) != derive_key(b"secret", info=b"session")

    def test_derive_key_empty_secret_raises(self) -> None:
        with pytest.raises(ValueError, match="secret_key is empty"):
            derive_key(b"", info=HKDF_INFO)


class TestSecretCipher:
    def test_decrypt_round_trips(self) -> None:
        cipher = SecretCipher(b"service-secret-key")

        sealed = cipher.encrypt(SECRET, associated_data=KEY_ID)

        assert cipher.decrypt(sealed, associated_data=KEY_ID) == SECRET

    def test_encrypt_output_excludes_plaintext(self) -> None:
        sealed = SecretCipher(b"service-secret-key").encrypt(SECRET, associated_data=KEY_ID)

        assert SECRET.encode() not in sealed
        assert sealed[:1] == FORMAT_V1
        assert len(sealed) == 1 + NONCE_BYTES + len(SECRET) + 16

    def test_encrypt_uses_fresh_nonce(self) -> None:
        cipher = SecretCipher(b"service-secret-key")

        first = cipher.encrypt(SECRET, associated_data=KEY_ID)
        second = cipher.encrypt(SECRET, associated_data=KEY_ID)

        assert first != second

    def test_decrypt_other_associated_data_raises(self) -> None:
        cipher = SecretCipher(b"service-secret-key")
        sealed = cipher.encrypt(SECRET, associated_data=KEY_ID)

        with pytest.raises(DecryptionError):
            cipher.decrypt(sealed, associated_data=b"LTAIsomeotherkeyid000000")

    def test_decrypt_other_secret_key_raises(self) -> None:
        sealed = SecretCipher(b"service-secret-key").encrypt(SECRET, associated_data=KEY_ID)

        with pytest.raises(DecryptionError):
            SecretCipher(b"rotated-secret-key").decrypt(sealed, associated_data=KEY_ID)

    def test_decrypt_tampered_ciphertext_raises(self) -> None:
        cipher = SecretCipher(b"service-secret-key")
        sealed = bytearray(cipher.encrypt(SECRET, associated_data=KEY_ID))
        sealed[-1] ^= 0x01

        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(sealed), associated_data=KEY_ID)

    @pytest.mark.parametrize(
        "ciphertext",
        [b"", FORMAT_V1, FORMAT_V1 + b"\x00" * 20, b"\x02" + b"\x00" * 60],
        ids=["empty", "format-only", "truncated", "unknown-format"],
    )
    def test_decrypt_malformed_raises(self, ciphertext: bytes) -> None:
        with pytest.raises(DecryptionError):
            SecretCipher(b"service-secret-key").decrypt(ciphertext, associated_data=KEY_ID)
