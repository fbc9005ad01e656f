import hashlib

import pytest

from phonestatus.numbers import DigestError, Mask, digest, normalize_digest

NUMBER = "13800138000"
# Known answers for 13800138000 under each mask.
MD5_HEX = "7945bd83237335e5376ff44d62e4f0ae"
SHA256_HEX = "a6942f9771d67f34034d2f1926988ed3fad3bf1b4e7cedb9a31f31398dea43bc"
SM3_HEX = "ee5e7b1cbf65495467be9ff49ac5fc14b6887547c1cd7f8856221b23f1efa062"
# The widely published SM3 test vector for the message "abc".
SM3_ABC_HEX = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


class TestDigest:
    @pytest.mark.parametrize(
        ("mask", "expected"),
        [(Mask.MD5, MD5_HEX), (Mask.SHA256, SHA256_HEX), (Mask.SM3, SM3_HEX)],
    )
    def test_digest_known_answer(self, mask: Mask, expected: str) -> None:
        assert digest(NUMBER, mask) == expected

    def test_digest_md5_matches_hashlib(self) -> None:
        assert digest("19212345678", Mask.MD5) == hashlib.md5(b"19212345678").hexdigest()

    def test_digest_sm3_standard_vector(self) -> None:
        from phonestatus.numbers.masks import sm3_hex

        assert sm3_hex(b"abc") == SM3_ABC_HEX

    @pytest.mark.parametrize("mask", [Mask.MD5, Mask.SHA256, Mask.SM3])
    def test_digest_lowercase_hex_of_mask_length(self, mask: Mask) -> None:
        value = digest(NUMBER, mask)

        assert len(value) == mask.hex_length
        assert value == value.lower()
        assert set(value) <= set("0123456789abcdef")

    def test_digest_normal_raises(self) -> None:
        with pytest.raises(ValueError, match="NORMAL"):
            digest(NUMBER, Mask.NORMAL)


class TestNormalizeDigest:
    @pytest.mark.parametrize(
        ("mask", "value"),
        [(Mask.MD5, MD5_HEX), (Mask.SHA256, SHA256_HEX), (Mask.SM3, SM3_HEX)],
    )
    def test_normalize_digest_upper_case(self, mask: Mask, value: str) -> None:
        assert normalize_digest(value.upper(), mask) == value

    def test_normalize_digest_surrounding_space(self) -> None:
        assert normalize_digest(f"  {MD5_HEX}\t", Mask.MD5) == MD5_HEX

    @pytest.mark.parametrize(
        ("mask", "value", "reason"),
        [
            (Mask.MD5, MD5_HEX[:-1], "expected 32 hex characters, got 31"),
            (Mask.MD5, MD5_HEX + "0", "expected 32 hex characters, got 33"),
            (Mask.MD5, SHA256_HEX, "expected 32 hex characters, got 64"),
            (Mask.SHA256, MD5_HEX, "expected 64 hex characters, got 32"),
            (Mask.SM3, "", "expected 64 hex characters, got 0"),
            (Mask.MD5, "g" + MD5_HEX[1:], "expected only hex characters 0-9 and a-f"),
            (Mask.SM3, SM3_HEX[:-1] + " ", "expected 64 hex characters, got 63"),
            (Mask.SHA256, SHA256_HEX[:-2] + "0x", "expected only hex characters 0-9 and a-f"),
            (Mask.MD5, "７" + MD5_HEX[1:], "expected only hex characters 0-9 and a-f"),
        ],
    )
    def test_normalize_digest_invalid(self, mask: Mask, value: str, reason: str) -> None:
        with pytest.raises(DigestError) as caught:
            normalize_digest(value, mask)

        assert caught.value.mask is mask
        assert caught.value.reason == reason
        assert caught.value.value == value

    def test_normalize_digest_error_names_value(self) -> None:
        with pytest.raises(DigestError, match="invalid MD5 digest 'abc'"):
            normalize_digest("abc", Mask.MD5)

    def test_normalize_digest_normal_raises(self) -> None:
        with pytest.raises(ValueError, match="NORMAL"):
            normalize_digest(MD5_HEX, Mask.NORMAL)


class TestMask:
    def test_hex_length(self) -> None:
        assert {mask: mask.hex_length for mask in Mask} == {
            Mask.NORMAL: 0,
            Mask.MD5: 32,
            Mask.SHA256: 64,
            Mask.SM3: 64,
        }
