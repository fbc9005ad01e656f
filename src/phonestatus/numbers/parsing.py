"""Parse any realistic written form of a mainland mobile number into its canonical 11 digits.

Input comes from API parameters, consoles, contact apps and spreadsheets, so
the parser accepts what those produce. That includes the country code
``+86``/``0086``/``86`` with any separators, full-width and other Unicode
decimal digits, every Unicode space and dash, zero-width and other format
characters, brackets and ``tel:`` URIs. It also drops a trunk ``0`` or an IP
dialling prefix such as ``17951`` before the mobile number, and undoes
spreadsheet damage (``13800138000.0``, a leading apostrophe, ``="13800138000"``).

It never guesses. Any input it cannot map to exactly one number raises
``NumberParseError`` with a reason, and a result's digits always appear, in
order and contiguous, among the input's digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from phonestatus.numbers.errors import NumberParseError, ParseErrorReason
from phonestatus.numbers.segments import SEGMENT_TABLE, NumberKind, Segment

# Segments parsing accepts, by 4-digit prefix: all but UNALLOCATED.
_SUPPORTED_BY_PREFIX4 = {
    prefix4: segment
    for prefix4, segment in SEGMENT_TABLE.by_prefix4.items()
    if segment.kind is not NumberKind.UNALLOCATED
}

# Inputs longer than this are rejected before any other work. The longest
# realistic form, a tel: URI with parameters, fits in well under 100 characters.
MAX_INPUT_CHARS = 128

MOBILE_DIGITS = 11
COUNTRY_CODE = "86"
INTERNATIONAL_PREFIX = "00"
TRUNK_PREFIX = "0"
# Carrier IP-call prefixes dialled before a mobile number on older phones:
# 17951 and 12593 (China Mobile), 17911 (China Unicom), 17909 and 17908 (China Telecom).
IP_DIALLING_PREFIXES = frozenset({"17951", "12593", "17911", "17909", "17908"})
# Second digits of mobile numbers. Numbers starting 10, 11 or 12 are Beijing landlines
# and service numbers.
MOBILE_SECOND_DIGITS = frozenset("3456789")

# Separators a number may contain besides digits and "+", after normalisation.
# ASCII input skips normalisation, so its own brackets, "_" and control
# whitespace are listed too.
_PLAIN_SEPARATORS = " -()/_[]{}\t\n\v\f\r\x1c\x1d\x1e\x1f"
# Deleted with bytes.translate where the text is ASCII: about twice as fast as str.translate.
_PLAIN_SEPARATOR_BYTES = _PLAIN_SEPARATORS.encode("ascii")
_SEPARATOR_BYTES = _PLAIN_SEPARATOR_BYTES + b".,"
_DELETION_TABLES = {
    separators: dict.fromkeys(separators)
    for separators in (_PLAIN_SEPARATOR_BYTES, _SEPARATOR_BYTES)
}
_URI_SCHEMES = ("tel:", "callto:", "sms:")

# A number cell exported as a float: 13800138000.0, or 13800138000,0 in locales
# with a decimal comma. Any length matches, so 1380013800.0 stays 10 digits long.
_DECIMAL_WITH_ZERO_FRACTION = re.compile(r"(\d+)[.,]0+")
# Excel and other spreadsheets write 11 or more digits as e.g. 1.38001E+10 once
# the column is a number, and the digits past the mantissa are gone.
_SCIENTIFIC_NOTATION = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d{1,3}")


@dataclass(frozen=True, slots=True)
class MobileNumber:
    """A mainland mobile number in canonical form and the segment it belongs to."""

    digits: str
    segment: Segment


# NOTE: _mobile_number fills the slots through their descriptors instead of
# calling the generated __init__, whose frozen-dataclass object.__setattr__
# calls cost about twice as much. MobileNumber has no __post_init__ to skip.
_new_object = object.__new__
_set_digits: Callable[[MobileNumber, str], None] = MobileNumber.__dict__["digits"].__set__
_set_segment: Callable[[MobileNumber, Segment], None] = MobileNumber.__dict__["segment"].__set__


def _mobile_number(digits: str, segment: Segment) -> MobileNumber:
    number = _new_object(MobileNumber)
    _set_digits(number, digits)
    _set_segment(number, segment)
    return number


def _delete_separators(text: str, separators: bytes) -> str:
    """Return ``text`` without the ASCII ``separators``, keeping every other character."""
    if text.isascii():
        return text.encode("ascii").translate(None, separators).decode("ascii")
    return text.translate(_DELETION_TABLES[separators])


class _NormalisingTable(dict[int, str]):
    """``str.translate`` table mapping each character to its plain ASCII role.

    Decimal digits of any script become ASCII digits, and full-width ASCII
    forms become ASCII. Every space becomes " ", every dash "-", and opening
    and closing brackets "(" and ")". Format characters (zero-width space,
    joiners, byte-order mark, direction marks, soft hyphen) are removed.
    Entries are computed on first sight of a character and cached.
    """

    def __missing__(self, code_point: int) -> str:
        mapped = _normalise_character(chr(code_point))
        if len(self) < _TABLE_CACHE_LIMIT:
            self[code_point] = mapped
        return mapped


# Bounds the cache so input cycling through all of Unicode cannot grow it without limit.
_TABLE_CACHE_LIMIT = 4096


_EXTRA_PLUS_SIGNS = frozenset("\ufe62\u207a\u208a")  # small, superscript and subscript plus
_EXTRA_DASHES = frozenset("\u2212\u2043\u02d7")  # minus sign, hyphen bullet, modifier minus
_EXTRA_DOTS = frozenset("\u3002\uff61\u00b7\u30fb\u2027")  # ideographic full stops and middle dots
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
_ASCII_ROLES = {"_": "-", "[": "(", "{": "(", "]": ")", "}": ")"}
_LINE_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")


def _normalise_character(char: str) -> str:
    if char in _LINE_BREAKS:
        return " "
    if char.isascii():
        return _ASCII_ROLES.get(char, char)
    if 0xFF01 <= ord(char) <= 0xFF5E:
        # Full-width ASCII forms (U+FF01-U+FF5E) sit at a fixed offset from ASCII.
        return _normalise_character(chr(ord(char) - 0xFEE0))

    category = unicodedata.category(char)
    if category == "Nd":
        return str(unicodedata.decimal(char))
    if category == "Zs":
        return " "
    if category == "Cf":
        return ""
    if category == "Pd" or char in _EXTRA_DASHES:
        return "-"
    if category == "Ps":
        return "("
    if category == "Pe":
        return ")"
    if char in _EXTRA_PLUS_SIGNS:
        return "+"
    if char in _EXTRA_DOTS:
        return "."
    return _QUOTES.get(char, char)


NORMALISING_TABLE = _NormalisingTable()


def parse_mobile(text: str) -> MobileNumber:
    """Parse user input into a mainland mobile number.

    Raises ``NumberParseError`` when the input is empty, is not a phone
    number, has the wrong number of digits, is a landline or foreign number,
    lost digits in a spreadsheet, or falls in no supported segment.
    """
    # Fast path for input that is already canonical, which is most API traffic.
    # It builds the result inline, as _mobile_number does, to save a call.
    if len(text) == MOBILE_DIGITS and text.isascii() and text.isdigit():
        segment = _SUPPORTED_BY_PREFIX4.get(text[:4])
        if segment is not None:
            number = _new_object(MobileNumber)
            _set_digits(number, text)
            _set_segment(number, segment)
            return number

    if len(text) > MAX_INPUT_CHARS:
        raise NumberParseError(text, ParseErrorReason.TOO_LONG)

    # Quick path for digits with an optional leading "+" and separators. The
    # general path below returns the same number for such text, or the error
    # when this path does not find a supported number. A "." or "," is a
    # separator here unless it may start a spreadsheet's decimal fraction,
    # which only the general path reads. ASCII text needs no normalisation,
    # and its separators are deleted inline, as _delete_separators would.
    if text.isascii():
        normalized = text
        compact = text.encode("ascii").translate(None, _PLAIN_SEPARATOR_BYTES).decode("ascii")
    else:
        normalized = text.translate(NORMALISING_TABLE)
        compact = _delete_separators(normalized, _PLAIN_SEPARATOR_BYTES)
    if ("." in compact or "," in compact) and not _DECIMAL_WITH_ZERO_FRACTION.fullmatch(compact):
        compact = compact.replace(".", "").replace(",", "")
    has_plus = compact[:1] == "+"
    digits = compact[1:] if has_plus else compact
    if digits.isdigit() and digits.isascii():
        length = len(digits)
        national = ""
        if length == MOBILE_DIGITS + 2 and digits[:2] == COUNTRY_CODE:
            national = digits[2:]
        elif has_plus:
            pass
        elif length == MOBILE_DIGITS:
            national = digits
        elif length == MOBILE_DIGITS + 4 and digits[:4] == INTERNATIONAL_PREFIX + COUNTRY_CODE:
            national = digits[4:]
        elif length == MOBILE_DIGITS + 1 and digits[0] == TRUNK_PREFIX:
            national = digits[1:]
        # Every key of the dict is a mobile prefix, so a hit means 11 digits of a mobile number.
        segment = (
            _SUPPORTED_BY_PREFIX4.get(national[:4]) if len(national) == MOBILE_DIGITS else None
        )
        if segment is not None:
            number = _new_object(MobileNumber)
            _set_digits(number, national)
            _set_segment(number, segment)
            return number

        # Not a supported number in a common shape: the general rules decide
        # which error applies, starting from the digits already extracted.
        national = _national_number(digits, has_plus=has_plus, text=text)
        return _mobile_from_national(national, text)

    return parse_normalized(normalized, text)


def parse_normalized(normalized: str, text: str) -> MobileNumber:
    """Parse ``text`` by the general rules, given its normalised form.

    ``parse_mobile`` calls this for everything its quick paths do not resolve.
    """
    cleaned = _strip_wrapping(normalized.strip(), text)
    has_plus, digits = _split_digits(cleaned, text)
    national = _national_number(digits, has_plus=has_plus, text=text)
    return _mobile_from_national(national, text)


def _strip_wrapping(cleaned: str, text: str) -> str:
    """Remove what spreadsheets, formulas and URIs wrap around a number."""
    if not cleaned:
        raise NumberParseError(text, ParseErrorReason.EMPTY)

    # Formula protection: ="13800138000" or =13800138000.
    if cleaned[0] == "=":
        cleaned = cleaned[1:].strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1].strip()
    # Text-forcing apostrophe: '13800138000.
    if cleaned[:1] == "'":
        cleaned = cleaned[1:].strip()

    if ":" in cleaned:
        lowered = cleaned.lower()
        for scheme in _URI_SCHEMES:
            if lowered.startswith(scheme):
                # RFC 3966: parameters such as ;phone-context= follow the number.
                cleaned = cleaned[len(scheme) :].lstrip("/").split(";", 1)[0].strip()
                break

    # The character tests keep the regular expressions off the common path.
    if ("e" in cleaned or "E" in cleaned) and _SCIENTIFIC_NOTATION.fullmatch(cleaned):
        raise NumberParseError(text, ParseErrorReason.PRECISION_LOST)
    if "." in cleaned or "," in cleaned:
        decimal = _DECIMAL_WITH_ZERO_FRACTION.fullmatch(cleaned)
        if decimal:
            cleaned = decimal.group(1)

    if not cleaned:
        raise NumberParseError(text, ParseErrorReason.EMPTY)
    return cleaned


def _split_digits(cleaned: str, text: str) -> tuple[bool, str]:
    """Return whether the number starts with "+", and its digits.

    Raises ``NumberParseError`` when anything but separators remains, or a
    "+" follows a digit.
    """
    compact = _delete_separators(cleaned, _SEPARATOR_BYTES)
    has_plus = compact[:1] == "+"
    digits = compact[1:] if has_plus else compact
    # isdigit() is False for "" and isascii() rules out other scripts' digit-like characters.
    if not (digits.isdigit() and digits.isascii()):
        raise NumberParseError(text, ParseErrorReason.NOT_A_NUMBER)
    return has_plus, digits


def _national_number(digits: str, *, has_plus: bool, text: str) -> str:
    """Strip the country code, international, trunk and IP dialling prefixes from ``digits``."""
    if has_plus:
        if digits.startswith(TRUNK_PREFIX):
            raise NumberParseError(text, ParseErrorReason.NOT_A_NUMBER)
        if not digits.startswith(COUNTRY_CODE):
            raise NumberParseError(text, ParseErrorReason.FOREIGN_NUMBER)
        national = digits[len(COUNTRY_CODE) :]
    elif digits.startswith(INTERNATIONAL_PREFIX):
        if not digits.startswith(INTERNATIONAL_PREFIX + COUNTRY_CODE):
            raise NumberParseError(text, ParseErrorReason.FOREIGN_NUMBER)
        national = digits[len(INTERNATIONAL_PREFIX + COUNTRY_CODE) :]
    elif digits.startswith(COUNTRY_CODE) and len(digits) > MOBILE_DIGITS:
        # No mobile or landline number starts with 8 and has more than 11
        # digits, so a leading 86 here is the country code written without "+".
        national = digits[len(COUNTRY_CODE) :]
    else:
        national = digits

    # A trunk 0 before a mobile number (013800138000), also after the country
    # code as in +86 (0)138 0013 8000. Beijing's 010 landlines have 11 digits
    # with the 0, so a 12-digit 01x... is always trunk plus mobile.
    if (
        len(national) == MOBILE_DIGITS + 1
        and national.startswith(TRUNK_PREFIX)
        and national[2] in MOBILE_SECOND_DIGITS
        and national[1] == "1"
    ):
        national = national[1:]
    elif (
        not has_plus
        and len(national) == MOBILE_DIGITS + 5
        and national[:5] in IP_DIALLING_PREFIXES
        and national[5] == "1"
        and national[6] in MOBILE_SECOND_DIGITS
    ):
        national = national[5:]
    return national


def _mobile_from_national(national: str, text: str) -> MobileNumber:
    """Check that a national number is a mobile number in a supported segment."""
    first = national[0] if national else ""
    if not national:
        raise NumberParseError(text, ParseErrorReason.TOO_SHORT)
    if first == "1" and len(national) >= 2 and national[1] not in MOBILE_SECOND_DIGITS:
        raise NumberParseError(text, ParseErrorReason.NOT_MOBILE)
    if first != "1":
        # Landlines carry a 0 trunk prefix or start with an area code 2-9.
        if len(national) > MOBILE_DIGITS + 1:
            raise NumberParseError(text, ParseErrorReason.TOO_LONG)
        if len(national) < 5:
            raise NumberParseError(text, ParseErrorReason.TOO_SHORT)
        raise NumberParseError(text, ParseErrorReason.NOT_MOBILE)
    if len(national) < MOBILE_DIGITS:
        raise NumberParseError(text, ParseErrorReason.TOO_SHORT)
    if len(national) > MOBILE_DIGITS:
        raise NumberParseError(text, ParseErrorReason.TOO_LONG)

    segment = _SUPPORTED_BY_PREFIX4.get(national[:4])
    if segment is None:
        raise NumberParseError(text, ParseErrorReason.UNSUPPORTED_SEGMENT)
    return _mobile_number(national, segment)
