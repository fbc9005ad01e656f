"""A small streaming XLSX writer for result files: text and integer cells, a bold header.

Result files are written row by row, top to bottom, a million rows and more.
Over 100,000 rows of eight text cells on a 2-core machine, xlsxwriter 3.3.1
in constant-memory mode took about 37 µs per row. pyexcelerate 0.13.0 took
about 33 µs and keeps every row in memory. This module writes the sheet XML
itself in about 7 µs per row. It covers only what result files use:
inline-string and integer cells, one bold cell style, a frozen header row and
column widths.

Each sheet is spooled to a temporary file as it is written, so sheets can be
filled in any order (the summary comes first in the workbook but is filled
last). ``close`` packs the parts into the ZIP container, reading each spool
file in blocks.

Cell text is XML-escaped. Characters that XML 1.0 forbids (C0 controls other
than tab, line feed and carriage return, U+FFFE and U+FFFF) are written as
``_xHHHH_`` escapes, and a literal ``_xHHHH_`` in the text gets its
underscore escaped as ``_x005F_``. Excel and python-calamine decode these
escapes; openpyxl 3.1.5 returns them undecoded.
"""

from __future__ import annotations

import re
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

# Excel's limit on the characters of one cell.
MAX_CELL_CHARS = 32_767
# Deflate level for the container. Level 1 costs a fraction of level 6's CPU
# time; the sheet XML is repetitive enough that both compress well.
COMPRESS_LEVEL = 1
BOLD_STYLE = 1
SPOOL_BLOCK_BYTES = 1024 * 1024
ROWS_PER_WRITE = 1000

_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

_STYLES = (
    _XML_DECLARATION + f'<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def column_letters(index: int) -> str:
    """Return the column name of a 0-based column index: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def xml_text(text: str) -> str:
    """Return ``text`` escaped for a ``<t>`` element, cut to Excel's cell limit."""
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS]
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = _FORBIDDEN.sub(lambda match: f"_x{ord(match.group()):04X}_", text)
    return escape(text)


class SheetWriter:
    """One worksheet, written row by row into a spool file."""

    def __init__(self, title: str, spool_path: Path) -> None:
        self.title = title
        self.rows = 0
        self.spool_path = spool_path
        self._spool: IO[bytes] = spool_path.open("wb")
        self._columns: list[str] = []
        self._widths: dict[int, float] = {}
        self._frozen_rows = 0
        self._buffer: list[str] = []

    def freeze_rows(self, count: int) -> None:
        """Keep the first ``count`` rows in view while scrolling."""
        self._frozen_rows = count

    def set_width(self, column: int, width: float) -> None:
        """Set a 0-based column's width in characters."""
        self._widths[column] = width

    def append(self, cells: Sequence[str | int | None], *, style: int = 0) -> None:
        """Write the next row: text and integer cells; None and empty text leave a cell empty."""
        self.rows += 1
        row = self.rows
        columns = self._columns
        while len(columns) < len(cells):
            columns.append(column_letters(len(columns)))
        style_attribute = f' s="{style}"' if style else ""
        parts = [f'<row r="{row}">']
        for index, value in enumerate(cells):
            if value is None or value == "":
                continue
            reference = f"{columns[index]}{row}"
            if isinstance(value, int):
                # int() writes a bool as 1 or 0, not as True or False.
                parts.append(f'<c r="{reference}"{style_attribute}><v>{int(value)}</v></c>')
                continue
            text = xml_text(value)
            space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
            parts.append(
                f'<c r="{reference}"{style_attribute} t="inlineStr"><is><t{space}>{text}</t></is></c>'
            )
        parts.append("</row>")
        buffer = self._buffer
        buffer.append("".join(parts))
        if len(buffer) >= ROWS_PER_WRITE:
            self._flush()

    def finish(self) -> tuple[bytes, bytes]:
        """Close the spool file; return the XML that goes before and after the spooled rows."""
        self._flush()
        self._spool.close()
        return self._head().encode(), b"</sheetData></worksheet>"

    def discard(self) -> None:
        self._spool.close()

    def _flush(self) -> None:
        if self._buffer:
            self._spool.write("".join(self._buffer).encode())
            self._buffer = []

    def _head(self) -> str:
        view = '<sheetView workbookViewId="0">'
        if self._frozen_rows:
            top_left = f"A{self._frozen_rows + 1}"
            view += (
                f'<pane ySplit="{self._frozen_rows}" topLeftCell="{top_left}" '
                'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
            )
        view += "</sheetView>"
        columns = ""
        if self._widths:
            columns = (
                "<cols>"
                + "".join(
                    f'<col min="{index + 1}" max="{index + 1}" width="{width}" customWidth="1"/>'
                    for index, width in sorted(self._widths.items())
                )
                + "</cols>"
            )
        # Readers such as openpyxl size every row from the dimension.
        last_column = self._columns[-1] if self._columns else "A"
        dimension = f"A1:{last_column}{max(self.rows, 1)}"
        return (
            _XML_DECLARATION
            + f'<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
            + f'<dimension ref="{dimension}"/>'
            + f"<sheetViews>{view}</sheetViews>"
            + '<sheetFormatPr defaultRowHeight="15"/>'
            + columns
            + "<sheetData>"
        )


class StreamingWorkbook:
    """An XLSX file written sheet by sheet; sheets appear in the order they were added.

    Use as a context manager, or call ``close``: the file at ``path`` is
    written only then. The spool files live in a private temporary directory,
    removed on close and when the ``with`` block raises.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._directory = tempfile.TemporaryDirectory(prefix="xlsx-")
        self._sheets: list[SheetWriter] = []

    def __enter__(self) -> StreamingWorkbook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self._discard()

    def add_sheet(self, title: str) -> SheetWriter:
        """Add a sheet; ``title`` must be a valid, unique sheet name (at most 31 characters)."""
        if any(sheet.title == title for sheet in self._sheets):
            raise ValueError(f"duplicate sheet title {title!r}")
        sheet = SheetWriter(title, Path(self._directory.name) / f"sheet{len(self._sheets) + 1}.xml")
        self._sheets.append(sheet)
        return sheet

    def close(self) -> None:
        """Pack every sheet into the XLSX file at ``path``."""
        try:
            with zipfile.ZipFile(
                self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
            ) as archive:
                self._write_package(archive)
        finally:
            self._discard()

    def _write_package(self, archive: zipfile.ZipFile) -> None:
        count = len(self._sheets)
        archive.writestr("[Content_Types].xml", _content_types(count))
        archive.writestr(
            "_rels/.rels",
            _XML_DECLARATION + f'<Relationships xmlns="{_PACKAGE_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/workbook.xml", _workbook([sheet.title for sheet in self._sheets]))
        archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(count))
        archive.writestr("xl/styles.xml", _STYLES)
        for number, sheet in enumerate(self._sheets, start=1):
            head, tail = sheet.finish()
            info = zipfile.ZipInfo(f"xl/worksheets/sheet{number}.xml", time.localtime()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            # Python 3.11 has no public field for a member's level (3.13 adds compress_level).
            info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
            # With the size known up front, zipfile uses ZIP64 only past 4 GiB.
            info.file_size = len(head) + sheet.spool_path.stat().st_size + len(tail)
            with archive.open(info, "w") as part, sheet.spool_path.open("rb") as spool:
                part.write(head)
                while block := spool.read(SPOOL_BLOCK_BYTES):
                    part.write(block)
                part.write(tail)

    def _discard(self) -> None:
        for sheet in self._sheets:
            sheet.discard()
        self._sheets = []
        self._directory.cleanup()


def _content_types(count: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{number}.xml" ContentType="{_SHEET_TYPE}"/>'
        for number in range(1, count + 1)
    )
    return (
        _XML_DECLARATION
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + sheets
        + "</Types>"
    )


def _workbook(titles: list[str]) -> str:
    sheets = "".join(
        f'<sheet name={quoteattr(title)} sheetId="{number}" r:id="rId{number}"/>'
        for number, title in enumerate(titles, start=1)
    )
    return (
        _XML_DECLARATION
        + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        + '<bookViews><workbookView activeTab="0"/></bookViews>'
        + f"<sheets>{sheets}</sheets></workbook>"
    )


def _workbook_rels(count: int) -> str:
    sheets = "".join(
        f'<Relationship Id="rId{number}" Type="{_REL_NS}/worksheet" '
        f'Target="worksheets/sheet{number}.xml"/>'
        for number in range(1, count + 1)
    )
    styles = f'<Relationship Id="rId{count + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
    return (
        _XML_DECLARATION
        + f'<Relationships xmlns="{_PACKAGE_REL_NS}">{sheets}{styles}</Relationships>'
    )
