"""Response envelopes: JSON with exact types by default, XML when the request sets ``Format=XML``.

JSON keeps the Python types of the body, so an action that puts an ``int`` in
``NumberSegment`` and a ``bool`` in ``IsNumberPortability`` gets JSON numbers
and booleans. XML mirrors the same tree under ``<{Action}Response>`` (``<Error>``
for HTTP 4xx/5xx); a list becomes one element per item under the list's name.
A missing ``Format`` means JSON: every official SDK asks for JSON, and the new
Python SDK cannot read an XML success body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from xml.sax.saxutils import escape

from phonestatus.gateway.errors import Failure, GatewayError

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# The new Python SDK checks for exactly this value before parsing an XML error.
XML_CONTENT_TYPE = "text/xml;charset=utf-8"
REQUEST_ID_HEADER = "x-acs-request-id"

# Characters XML 1.0 cannot carry even escaped; they can reach a message through user input.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ResponseFormat(StrEnum):
    JSON = "JSON"
    XML = "XML"


def parse_format(value: str | None) -> ResponseFormat:
    """Read the ``Format`` parameter case-insensitively; raise ``InvalidParameter.Format`` otherwise."""
    if value is None or value == "":
        return ResponseFormat.JSON
    try:
        return ResponseFormat(value.upper())
    except ValueError:
        raise GatewayError(Failure.INVALID_FORMAT, detail=f"Format {value[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A serialized response: status, body and headers (lowercase names)."""

    status_code: int
    body: bytes
    headers: dict[str, str]

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Return the headers for an ASGI ``http.response.start`` message, with Content-Length."""
        raw = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]
        raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        return raw


def render(
    body: Mapping[str, object],
    *,
    status: int,
    response_format: ResponseFormat,
    action: str | None,
    request_id: str,
) -> Rendered:
    """Serialize a body; ``action`` names the XML root of a non-error response."""
    if response_format is ResponseFormat.XML:
        is_error = status >= HTTPStatus.BAD_REQUEST or not action
        root = "Error" if is_error else f"{action}Response"
        content, content_type = to_xml(root, body), XML_CONTENT_TYPE
    else:
        content, content_type = to_json(body), JSON_CONTENT_TYPE
    headers = {"content-type": content_type, REQUEST_ID_HEADER: request_id}
    return Rendered(status_code=int(status), body=content, headers=headers)


def to_json(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def to_xml(root: str, body: Mapping[str, object]) -> bytes:
    parts = ["<?xml version='1.0' encoding='UTF-8'?>", f"<{root}>"]
    for name, value in body.items():
        _append_element(parts, name, value)
    parts.append(f"</{root}>")
    return "".join(parts).encode()


def _append_element(parts: list[str], name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            _append_element(parts, name, item)
        return
    parts.append(f"<{name}>")
    if isinstance(value, Mapping):
        for child_name, child in value.items():
            _append_element(parts, str(child_name), child)
    elif name == "Recommend":
        # CDATA as on the reference gateway; "]]>" cannot occur inside, so split it.
        text = _xml_text(str(value)).replace("]]>", "]]]]><![CDATA[>")
        parts.append(f"<![CDATA[{text}]]>")
    else:
        parts.append(escape(_xml_text(_scalar_text(value))))
    parts.append(f"</{name}>")


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)
