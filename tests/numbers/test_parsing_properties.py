"""Property tests: parsing never returns a number the user did not write."""

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonestatus.numbers import MobileNumber, NumberKind, NumberParseError, parse_mobile
from phonestatus.numbers.parsing import IP_DIALLING_PREFIXES, NORMALISING_TABLE, parse_normalized
from phonestatus.numbers.segments import SEGMENT_TABLE

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None)

SUPPORTED_PREFIXES = sorted(
    segment.prefix
    for segment in SEGMENT_TABLE.segments
    if segment.kind is not NumberKind.UNALLOCATED
)
# Digits allowed before the number the user meant: country code, international
# and trunk prefixes, and IP dialling prefixes.
ALLOWED_LEADING_DIGITS = {"", "0", "86", "860", "0086", "00860", *IP_DIALLING_PREFIXES}

SEPARATORS = [" ", "-", ".", "\u00a0", "\u3000", "\t", "\u2009", "–", "—", "－", "(", ")", "/"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad", "\u200e"]
# Pieces of input the quick paths of parse_mobile handle.
PLAIN_PIECES = [*"0123456789+-() .,", "86", "0086", "138", "0", ".0", "\t", "\u3000", "１"]
# Pieces of arbitrary input that come close to numbers and the wrapping the parser strips.
INPUT_PIECES = [*"0123456789+-.() '=,;eE\"", "tel:", "\u3000", "１", "８", "\u200b", "86", "0086"]
COUNTRY_FORMS = ["", "+86", "86", "0086", "+86 ", "(+86)", "+86-", "0086 ", "(86) ", "＋８６"]


def decimal_digits(text: str) -> str:
    """Return the decimal digits of any script in ``text``, as ASCII."""
    return "".join(str(unicodedata.decimal(c)) for c in text if unicodedata.category(c) == "Nd")


@st.composite
def mobile_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(SUPPORTED_PREFIXES))
    rest = draw(
        st.text(alphabet="0123456789", min_size=11 - len(prefix), max_size=11 - len(prefix))
    )
    return prefix + rest


def full_width(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if "0" <= char <= "9" else char


@st.composite
def written_forms(draw: st.DrawFn, number: str) -> str:
    """Write ``number`` the way a person, phone or spreadsheet might."""
    pieces: list[str] = []
    last = len(number) - 1
    for index, digit in enumerate(number):
        if index and draw(st.booleans()):
            separators = SEPARATORS + INVISIBLE
            if index == last and digit == "0":
                # "1300000000.0" reads as a spreadsheet's 10-digit 1300000000, which
                # must be rejected, not as 13000000000 with a dot before its last digit.
                separators = [separator for separator in separators if separator != "."]
            pieces.append(draw(st.sampled_from(separators)))
        pieces.append(full_width(digit) if draw(st.booleans()) else digit)
    country = draw(st.sampled_from(COUNTRY_FORMS))
    lead = draw(st.sampled_from(["", " ", "\t", "'", "\u200b"]))
    trail = draw(st.sampled_from(["", " ", "\t", "\r\n", "\u200b"]))
    return lead + country + "".join(pieces) + trail


class TestParseMobileProperties:
    @PROPERTY_SETTINGS
    @given(st.data())
    def test_parse_mobile_written_form_round_trip(self, data: st.DataObject) -> None:
        number = data.draw(mobile_numbers())
        text = data.draw(written_forms(number))

        assert parse_mobile(text).digits == number

    def test_dot_before_last_zero_is_a_decimal(self) -> None:
        with pytest.raises(NumberParseError):
            parse_mobile("1300000000.0")
        with pytest.raises(NumberParseError):
            parse_mobile("1380013800.０")

    @PROPERTY_SETTINGS
    @given(mobile_numbers(), st.sampled_from(["", "86", "0086", "0"]), st.integers(1, 4))
    def test_parse_mobile_spreadsheet_decimal(self, number: str, prefix: str, zeros: int) -> None:
        assert parse_mobile(f"{prefix}{number}.{'0' * zeros}").digits == number

    @PROPERTY_SETTINGS
    @given(mobile_numbers(), st.integers(1, 10), st.sampled_from([".", ","]))
    def test_parse_mobile_short_decimal_rejected(self, number: str, keep: int, mark: str) -> None:
        # A zero fraction must never be read as the missing last digits.
        with pytest.raises(NumberParseError):
            parse_mobile(f"{number[:keep]}{mark}{'0' * (11 - keep)}")

    @PROPERTY_SETTINGS
    @given(mobile_numbers())
    def test_parse_mobile_canonical_idempotent(self, number: str) -> None:
        parsed = parse_mobile(number)

        assert parsed.digits == number
        assert parse_mobile(parsed.digits) == parsed

    @PROPERTY_SETTINGS
    @given(st.lists(st.sampled_from(INPUT_PIECES), max_size=30).map("".join))
    def test_parse_mobile_result_written_in_input(self, text: str) -> None:
        try:
            digits = parse_mobile(text).digits
        except NumberParseError:
            return

        written = decimal_digits(text)
        start = written.find(digits)
        assert start >= 0
        assert written[:start] in ALLOWED_LEADING_DIGITS
        # Only a spreadsheet's ".0" or tel: URI parameters may follow the number.
        trailing = written[start + len(digits) :]
        assert set(trailing) <= {"0"} or ";" in text

    @PROPERTY_SETTINGS
    @given(st.text(max_size=200))
    def test_parse_mobile_arbitrary_text(self, text: str) -> None:
        try:
            number = parse_mobile(text)
        except NumberParseError as error:
            assert error.reason
            assert len(error.input) <= 40
            return

        assert len(number.digits) == 11
        assert number.digits.isascii()
        assert number.digits.isdigit()


def outcome(parse: Callable[[], MobileNumber]) -> str:
    """Return the parsed digits, or the error reason."""
    try:
        return parse().digits
    except NumberParseError as error:
        return error.reason.value


class TestQuickPaths:
    @PROPERTY_SETTINGS
    @given(st.lists(st.sampled_from(PLAIN_PIECES), max_size=12).map("".join))
    def test_quick_paths_match_general_rules(self, text: str) -> None:
        normalized = text if text.isascii() else text.translate(NORMALISING_TABLE)

        assert outcome(lambda: parse_mobile(text)) == outcome(
            lambda: parse_normalized(normalized, text)
        )

    @PROPERTY_SETTINGS
    @given(
        mobile_numbers(),
        st.sampled_from(["", "+86", "86", "0086", "0", "+86 0", "(+86) "]),
        st.sampled_from(["", ".0", ",00", "0", " .0"]),
    )
    def test_quick_paths_match_general_rules_valid(
        self, number: str, prefix: str, suffix: str
    ) -> None:
        text = prefix + number + suffix

        assert outcome(lambda: parse_mobile(text)) == outcome(lambda: parse_normalized(text, text))
