from __future__ import annotations

from decimal import Decimal

import pytest

from phonestatus.billing.errors import InvalidAmount
from phonestatus.billing.money import format_cny, parse_cny, round_half_up_to_fen, to_decimal

PARSE_VECTORS = [
    ("100", 100_000),
    ("100.5", 100_500),
    ("0.001", 1),
    ("0.1", 100),
    (" 12.340 ", 12_340),
    (7, 7_000),
    (Decimal("0.035"), 35),
    (Decimal("1.500"), 1_500),
]

MALFORMED = [
    "0.0001",
    "1.2345",
    "",
    "abc",
    "1,000",
    "1e3",
    ".5",
    "+1",
    "１００",
    "9" * 40,
]


class TestParseCny:
    @pytest.mark.parametrize(("text", "expected"), PARSE_VECTORS)
    def test_parse_cny_exact(self, text: str | int | Decimal, expected: int) -> None:
        assert parse_cny(text) == expected

    @pytest.mark.parametrize("text", MALFORMED)
    def test_parse_cny_malformed_raises(self, text: str) -> None:
        with pytest.raises(InvalidAmount) as caught:
            parse_cny(text)
        assert caught.value.value == text

    def test_parse_cny_float_raises(self) -> None:
        with pytest.raises(InvalidAmount, match="not a float"):
            parse_cny(0.1)  # type: ignore[arg-type]

    def test_parse_cny_decimal_with_four_places_raises(self) -> None:
        with pytest.raises(InvalidAmount, match="3 decimals"):
            parse_cny(Decimal("0.0005"))

    def test_parse_cny_negative_raises_unless_allowed(self) -> None:
        with pytest.raises(InvalidAmount, match="negative"):
            parse_cny("-1")
        assert parse_cny("-1.25", allow_negative=True) == -1_250


class TestFormatCny:
    @pytest.mark.parametrize(
        ("li", "text"),
        [(100_000, "100.000"), (1, "0.001"), (0, "0.000"), (-1_500, "-1.500"), (12_345, "12.345")],
    )
    def test_format_cny_three_decimals(self, li: int, text: str) -> None:
        assert format_cny(li) == text

    def test_format_cny_round_trips(self) -> None:
        for li in (0, 1, 999, 1000, 123_456_789):
            assert parse_cny(format_cny(li)) == li

    def test_to_decimal_exact(self) -> None:
        assert to_decimal(35) == Decimal("0.035")


class TestRoundHalfUpToFen:
    @pytest.mark.parametrize(
        ("li", "rounded"),
        [
            (0, 0),
            (4, 0),
            (5, 10),
            (14, 10),
            (15, 20),
            (100, 100),
            (-5, -10),
            (-4, 0),
            (12_345, 12_350),
        ],
    )
    def test_round_half_up_to_fen(self, li: int, rounded: int) -> None:
        assert round_half_up_to_fen(li) == rounded
