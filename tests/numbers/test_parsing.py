import pickle

import pytest

from phonestatus.numbers import Carrier, NumberParseError, ParseErrorReason, parse_mobile
from phonestatus.numbers.parsing import MAX_INPUT_CHARS

CANONICAL = "13800138000"

# Written forms of 13800138000 seen in API calls, contact apps and spreadsheets.
FORMS_OF_CANONICAL = [
    "13800138000",
    "+8613800138000",
    "8613800138000",
    "008613800138000",
    "+86 138-0013-8000",
    "(+86)13800138000",
    "86-138-0013-8000",
    "138 0013 8000",
    "138.0013.8000",
    "＋８６　１３８００１３８０００",
    "138\u00a00013\u00a08000",
    "138\t0013\t8000",
    "13800138000\t",
    " 13800138000 \r\n",
    "13800138000.0",
    "13800138000.00",
    "13800138000,0",
    "8613800138000.0",
    "'13800138000",
    "'13800138000'",
    '="13800138000"',
    "=13800138000",
    '"13800138000"',
    "“13800138000”",
    "013800138000",
    "0 138 0013 8000",
    "+86 (0)138 0013 8000",
    "+86 0138 0013 8000",
    "0086 138 0013 8000",
    "00 86 13800138000",
    "+86-13800138000",
    "+ 86 138 0013 8000",
    "(86) 138-0013-8000",
    "[+86] 138 0013 8000",
    "（+86）138-0013-8000",
    "【+86】13800138000",
    "138–0013–8000",
    "138—0013—8000",
    "138－0013－8000",
    "138‐0013‐8000",
    "138−0013−8000",
    "138_0013_8000",
    "138/0013/8000",
    "138·0013·8000",
    "138．0013．8000",
    "13,800,138,000",
    "\u200b13800138000",
    "138\u200b0013\u200c8000\u200d",
    "\ufeff13800138000",
    "\u202d13800138000\u202c",
    "\u2066+86 138 0013 8000\u2069",
    "138\u00ad0013\u00ad8000",
    "138\u20090013\u20098000",
    "138\u202f0013\u202f8000",
    "138\u30000013\u30008000",
    "١٣٨٠٠١٣٨٠٠٠",
    "𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎",
    "tel:+86-138-0013-8000",
    "tel:+8613800138000;phone-context=+86",
    "TEL:13800138000",
    "tel://13800138000",
    "ｔｅｌ：１３８００１３８０００",
    "callto:+8613800138000",
    "sms:13800138000",
    "1795113800138000",
    "17951 138 0013 8000",
    "12593-13800138000",
    "17911 13800138000",
    "17909 13800138000",
]


class TestParseMobile:
    @pytest.mark.parametrize("text", FORMS_OF_CANONICAL)
    def test_parse_mobile_written_form(self, text: str) -> None:
        number = parse_mobile(text)

        assert number.digits == CANONICAL
        assert number.segment.carrier is Carrier.CMCC

    @pytest.mark.parametrize(
        ("text", "carrier", "is_mvno"),
        [
            ("14911234567", Carrier.CTCC, False),
            ("19212345678", Carrier.CBN, False),
            ("16212345678", Carrier.CTCC, True),
            ("16512345678", Carrier.CMCC, True),
            ("16712345678", Carrier.CUCC, True),
            ("19147001234", Carrier.CTCC, False),
            ("19945009012", Carrier.CTCC, False),
            ("+86 191 4700 1234", Carrier.CTCC, False),
            ("0086 19945009012", Carrier.CTCC, False),
            ("13491234567", Carrier.CTCC, False),
            ("13481234567", Carrier.CMCC, False),
            ("17031234567", Carrier.CMCC, True),
        ],
    )
    def test_parse_mobile_segments_other_parsers_miss(
        self, text: str, carrier: Carrier, is_mvno: bool
    ) -> None:
        number = parse_mobile(text)

        assert number.digits == "".join(c for c in text if c.isdigit())[-11:]
        assert number.segment.carrier is carrier
        assert number.segment.is_mvno is is_mvno

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", ParseErrorReason.EMPTY),
            ("   ", ParseErrorReason.EMPTY),
            ("\u3000\t", ParseErrorReason.EMPTY),
            ("\u200b", ParseErrorReason.EMPTY),
            ("'", ParseErrorReason.EMPTY),
            ('=""', ParseErrorReason.EMPTY),
            ("tel:", ParseErrorReason.EMPTY),
            ("abc", ParseErrorReason.NOT_A_NUMBER),
            ("---", ParseErrorReason.NOT_A_NUMBER),
            ("+", ParseErrorReason.NOT_A_NUMBER),
            ("138OO138OOO", ParseErrorReason.NOT_A_NUMBER),
            ("138-0013-800o", ParseErrorReason.NOT_A_NUMBER),
            ("13800138000#", ParseErrorReason.NOT_A_NUMBER),
            ("*13800138000", ParseErrorReason.NOT_A_NUMBER),
            ("138+00138000", ParseErrorReason.NOT_A_NUMBER),
            ("++8613800138000", ParseErrorReason.NOT_A_NUMBER),
            ("+0086 13800138000", ParseErrorReason.NOT_A_NUMBER),
            ("①③⑧⓪⓪①③⑧⓪⓪⓪", ParseErrorReason.NOT_A_NUMBER),
            ("¹³⁸⁰⁰¹³⁸⁰⁰⁰", ParseErrorReason.NOT_A_NUMBER),
            ("mobile 13800138000", ParseErrorReason.NOT_A_NUMBER),
            ("13800138000 ext 12", ParseErrorReason.NOT_A_NUMBER),
            ("1380013800", ParseErrorReason.TOO_SHORT),
            ("138 0013 800", ParseErrorReason.TOO_SHORT),
            ("+86 138 0013 800", ParseErrorReason.TOO_SHORT),
            ("1", ParseErrorReason.TOO_SHORT),
            ("123", ParseErrorReason.NOT_MOBILE),
            ("0", ParseErrorReason.TOO_SHORT),
            ("138001380001", ParseErrorReason.TOO_LONG),
            ("+86 138 0013 8000 1", ParseErrorReason.TOO_LONG),
            ("13800138000 13900139000", ParseErrorReason.TOO_LONG),
            ("13800138000.5", ParseErrorReason.TOO_LONG),
            ("1380013800.0", ParseErrorReason.TOO_SHORT),
            ("1380013800,0", ParseErrorReason.TOO_SHORT),
            ("13800138,000", ParseErrorReason.TOO_SHORT),
            ("1" * (MAX_INPUT_CHARS + 1), ParseErrorReason.TOO_LONG),
            (" " * (MAX_INPUT_CHARS + 1), ParseErrorReason.TOO_LONG),
            ("09301234567", ParseErrorReason.NOT_MOBILE),
            ("0930-1234567", ParseErrorReason.NOT_MOBILE),
            ("+86 2222222222", ParseErrorReason.NOT_MOBILE),
            ("+86 10 12345678", ParseErrorReason.NOT_MOBILE),
            ("010-12345678", ParseErrorReason.NOT_MOBILE),
            ("(0571) 8888 8888", ParseErrorReason.NOT_MOBILE),
            ("88888888", ParseErrorReason.NOT_MOBILE),
            ("10086", ParseErrorReason.NOT_MOBILE),
            ("12345678901", ParseErrorReason.NOT_MOBILE),
            ("400-810-8888", ParseErrorReason.NOT_MOBILE),
            ("1.38001E+10", ParseErrorReason.PRECISION_LOST),
            ("1.38001e10", ParseErrorReason.PRECISION_LOST),
            ("1,38001E+10", ParseErrorReason.PRECISION_LOST),
            ("1.3800138E+10", ParseErrorReason.PRECISION_LOST),
            ("8.6138E+12", ParseErrorReason.PRECISION_LOST),
            ("'1.38001E+10", ParseErrorReason.PRECISION_LOST),
            ("１．３８００１Ｅ＋１０", ParseErrorReason.PRECISION_LOST),
            ("19412345678", ParseErrorReason.UNSUPPORTED_SEGMENT),
            ("16012345678", ParseErrorReason.UNSUPPORTED_SEGMENT),
            ("17912345678", ParseErrorReason.UNSUPPORTED_SEGMENT),
            ("14412345678", ParseErrorReason.UNSUPPORTED_SEGMENT),
            ("+1 650 253 0000", ParseErrorReason.FOREIGN_NUMBER),
            ("+852 9123 4567", ParseErrorReason.FOREIGN_NUMBER),
            ("0085291234567", ParseErrorReason.FOREIGN_NUMBER),
            ("+44 7911 123456", ParseErrorReason.FOREIGN_NUMBER),
        ],
    )
    def test_parse_mobile_rejected(self, text: str, reason: ParseErrorReason) -> None:
        with pytest.raises(NumberParseError) as caught:
            parse_mobile(text)

        assert caught.value.reason is reason


class TestNumberParseError:
    def test_str_names_input_and_reason(self) -> None:
        with pytest.raises(NumberParseError) as caught:
            parse_mobile("09301234567")

        assert str(caught.value) == (
            "invalid mobile number '09301234567': "
            "it is a landline or service number, not a mobile number"
        )

    def test_message_zh_names_input_and_reason(self) -> None:
        with pytest.raises(NumberParseError) as caught:
            parse_mobile("1380013800")

        assert caught.value.message_zh == "号码“1380013800”无效：手机号码应为 11 位，位数不足"

    def test_input_capped_for_display(self) -> None:
        with pytest.raises(NumberParseError) as caught:
            parse_mobile("9" * 5000)

        assert len(caught.value.input) == 40
        assert caught.value.input.endswith("…")
        assert len(str(caught.value)) < 200

    def test_is_value_error(self) -> None:
        with pytest.raises(ValueError, match="not a mobile number"):
            parse_mobile("010-12345678")

    def test_pickle_round_trip(self) -> None:
        error = NumberParseError("abc", ParseErrorReason.NOT_A_NUMBER)

        restored = pickle.loads(pickle.dumps(error))

        assert restored.input == "abc"
        assert restored.reason is ParseErrorReason.NOT_A_NUMBER
        assert str(restored) == str(error)

    @pytest.mark.parametrize("reason", list(ParseErrorReason))
    def test_every_reason_described(self, reason: ParseErrorReason) -> None:
        error = NumberParseError("x", reason)

        assert reason.description_en in str(error)
        assert reason.description_zh in error.message_zh
