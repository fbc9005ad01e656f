"""Errors raised while turning user input into a canonical mobile number.

    ValueError
    └── NumberParseError   (reason: ParseErrorReason)

``masks.DigestError`` and ``segments.SegmentTableError`` are separate
``ValueError`` subclasses: they concern digests and the packaged data, not
number input.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

# Longest input shown back in an error message; longer input is cut with "…".
DISPLAY_INPUT_CHARS = 40


class ParseErrorReason(StrEnum):
    EMPTY = "EMPTY"
    NOT_A_NUMBER = "NOT_A_NUMBER"
    TOO_SHORT = "TOO_SHORT"
    TOO_LONG = "TOO_LONG"
    NOT_MOBILE = "NOT_MOBILE"
    UNSUPPORTED_SEGMENT = "UNSUPPORTED_SEGMENT"
    PRECISION_LOST = "PRECISION_LOST"
    FOREIGN_NUMBER = "FOREIGN_NUMBER"

    @property
    def description_en(self) -> str:
        return _DESCRIPTIONS[self][0]

    @property
    def description_zh(self) -> str:
        return _DESCRIPTIONS[self][1]


_DESCRIPTIONS: dict[ParseErrorReason, tuple[str, str]] = {
    ParseErrorReason.EMPTY: ("the input is empty", "输入为空"),
    ParseErrorReason.NOT_A_NUMBER: (
        "it contains characters that are not part of a phone number",
        "包含号码以外的字符",
    ),
    ParseErrorReason.TOO_SHORT: (
        "a mainland mobile number has 11 digits and this has fewer",
        "手机号码应为 11 位，位数不足",
    ),
    ParseErrorReason.TOO_LONG: (
        "a mainland mobile number has 11 digits and this has more",
        "手机号码应为 11 位，位数过多",
    ),
    ParseErrorReason.NOT_MOBILE: (
        "it is a landline or service number, not a mobile number",
        "不是手机号码（固定电话或服务号码）",
    ),
    ParseErrorReason.UNSUPPORTED_SEGMENT: (
        "its segment is not allocated to a supported carrier",
        "号段未分配或不受支持",
    ),
    ParseErrorReason.PRECISION_LOST: (
        "a spreadsheet stored it in scientific notation and lost digits, "
        "so format the column as text and export it again",
        "表格以科学计数法保存，已丢失数字；请将该列设为文本格式后重新导出",
    ),
    ParseErrorReason.FOREIGN_NUMBER: (
        "its country code is not +86 (mainland China)",
        "不是中国大陆号码（国家代码不是 +86）",
    ),
}


def shorten_for_display(text: str) -> str:
    """Return ``text`` cut to ``DISPLAY_INPUT_CHARS`` characters, marking a cut with "…"."""
    if len(text) <= DISPLAY_INPUT_CHARS:
        return text
    return text[: DISPLAY_INPUT_CHARS - 1] + "…"


class NumberParseError(ValueError):
    """User input that is not a supported mainland mobile number.

    Constructed as ``NumberParseError(text, reason)``. The class defines no
    ``__init__``: BaseException keeps ``(text, reason)`` as ``args`` in C code,
    which makes raising about five times cheaper, and batch imports raise
    this for many rows. ``input`` and the message are derived on access. The
    args are the constructor's, so the error pickles between processes.
    """

    if TYPE_CHECKING:

        def __init__(self, text: str, reason: ParseErrorReason) -> None: ...

    @property
    def input(self) -> str:
        """The text the user gave, cut for display."""
        text: str = self.args[0]
        return text if len(text) <= DISPLAY_INPUT_CHARS else shorten_for_display(text)

    @property
    def reason(self) -> ParseErrorReason:
        reason: ParseErrorReason = self.args[1]
        return reason

    def __str__(self) -> str:
        return f"invalid mobile number {self.input!r}: {self.reason.description_en}"

    @property
    def message_zh(self) -> str:
        return f"号码“{self.input}”无效：{self.reason.description_zh}"
