"""Request parameters: the URL query merged with a form-encoded body, blank values kept.

Official clients put parameters in different places: the new SDKs and typed
old-SDK requests use the query string, the old SDK's body params and pop-core
POST use an ``application/x-www-form-urlencoded`` body (pop-core sends even
``Signature`` there). Some C++ clients send such a body without a Content-Type,
so a body that looks like ``k=v&...`` is parsed as a form too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200

# A form body: one or more name=value pairs separated by '&', with no whitespace or control bytes.
_FORM_LIKE_BODY = re.compile(rb"^[^=&\s]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*$")


class ParameterEncodingError(ValueError):
    """A query string or form body is not valid UTF-8 or has too many parameters."""


@dataclass(frozen=True, slots=True)
class RequestParams:
    """Decoded parameters: ``query`` as sent in the URL, ``merged`` with the form body on top."""

    query: tuple[tuple[str, str], ...]
    merged: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.merged.get(name)


def decode_pairs(raw: bytes | str) -> list[tuple[str, str]]:
    """Decode ``a=1&b=&c`` into pairs, treating ``+`` as a space and keeping blank values.

    The result equals ``urllib.parse.parse_qsl(..., keep_blank_values=True)``
    with strict UTF-8; components without ``%`` or ``+`` skip unquoting, which
    is most of them and makes this several times faster on the gateway's path.
    Raises ``ParameterEncodingError`` when a decoded name or value is not UTF-8.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ParameterEncodingError("parameters are not valid UTF-8 after decoding") from exc
    if not text:
        return []
    if text.count("&") + 1 > MAX_FIELDS:
        raise ParameterEncodingError(f"more than {MAX_FIELDS} parameters")
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((_unquote_plus(name), _unquote_plus(value)))
    return pairs


def _unquote_plus(component: str) -> str:
    if "+" in component:
        component = component.replace("+", " ")
    if "%" not in component:
        return component
    try:
        return unquote(component, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ParameterEncodingError("parameters are not valid UTF-8 after decoding") from exc


def body_is_form(content_type: str | None, body: bytes) -> bool:
    """Return whether the body carries form parameters."""
    if not body:
        return False
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        return media_type == FORM_CONTENT_TYPE
    return _FORM_LIKE_BODY.match(body) is not None


def parse_params(query_string: bytes | str, body: bytes, content_type: str | None) -> RequestParams:
    """Merge query and form body; a name present in both takes the body's value.

    A name repeated within one source keeps its last value, as the official
    clients never repeat one.
    """
    query = tuple(decode_pairs(query_string))
    merged = dict(query)
    if body_is_form(content_type, body):
        merged.update(decode_pairs(body))
    return RequestParams(query=query, merged=merged)
