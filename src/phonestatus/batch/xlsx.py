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
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
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


def text_cell(reference: str, text: str, style_attribute: str = "") -> str:
    """Return the XML of an inline-string cell; ``text`` must not be empty."""
    text = xml_text(text)
    if text[0].isspace() or text[-1].isspace():
        return (
            f'<c r="{reference}"{style_attribute} t="inlineStr">'
            f'<is><t xml:space="preserve">{text}</t></is></c>'
        )
    return f'<c r="{reference}"{style_attribute} t="inlineStr"><is><t>{text}</t></is></c>'


# Stands for the row number in a CellRun's XML. Text cells never contain it: xml_text
# writes control characters as _xHHHH_ escapes.
_ROW_MARK = "\x00"


class CellRun:
    """Text cells whose values repeat on many rows: their XML is built once.

    Result files have a few dozen distinct tails (status, label, carrier,
    reason) over millions of rows. A run keeps their XML with a placeholder
    for the row number, so each row only substitutes it.
    """

    __slots__ = ("_xml", "first_column")

    def __init__(self, first_column: int, texts: Sequence[str]) -> None:
        self.first_column = first_column
        self._xml = "".join(
            text_cell(column_letters(first_column + offset) + _ROW_MARK, text)
            for offset, text in enumerate(texts)
            if text
        )

    def xml(self, row: str) -> str:
        """Return the cells' XML on row ``row`` (the row number as text)."""
        return self._xml.replace(_ROW_MARK, row)


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows of sheet XML in a spool file, ending at sheet row ``last_row``.

    A deflated segment contains raw deflate data that ends on a byte boundary
    (a sync flush). It also records the CRC-32 and size of its XML, so it can
    be copied into a sheet's ZIP member without compressing it again.
    """

    path: Path
    last_row: int
    deflated: bool = False
    size: int = 0
    crc: int = 0


class SheetWriter:
    """One worksheet, written row by row into spool files.

    A sheet's rows can also come from segments: spool files of row XML that
    other ``SheetWriter`` objects (``start_row`` set to where the segment
    begins, ``deflate`` to compress as they go), in this process or another,
    wrote and ``detach`` handed over. Segments written in parallel processes
    are also compressed in parallel.
    """

    def __init__(
        self, title: str, spool_path: Path, *, start_row: int = 1, deflate: bool = False
    ) -> None:
        self.title = title
        self.rows = start_row - 1
        self.spool_path = spool_path
        self._spool_base = spool_path
        self._segments: list[Segment] = []
        self._spool: IO[bytes] = spool_path.open("wb")
        self._columns: list[str] = []
        self._widths: dict[int, float] = {}
        self._frozen_rows = 0
        self._buffer: list[str] = []
        self._compressor = (
            zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS) if deflate else None
        )
        self._size = 0
        self._crc = 0

    def freeze_rows(self, count: int) -> None:
        """Keep the first ``count`` rows in view while scrolling."""
        self._frozen_rows = count

    def set_width(self, column: int, width: float) -> None:
        """Set a 0-based column's width in characters."""
        self._widths[column] = width

    def append(
        self,
        cells: Sequence[str | int | None],
        *,
        style: int = 0,
        tail: CellRun | None = None,
    ) -> None:
        """Write the next row: text and integer cells; None and empty text leave a cell empty.

        ``tail``, if given, adds its cells after ``cells``; it must start at
        column ``len(cells)``.
        """
        self.rows += 1
        row = str(self.rows)
        width = len(cells) if tail is None else max(len(cells), tail.first_column + 1)
        columns = self._columns
        while len(columns) < width:
            columns.append(column_letters(len(columns)))
        style_attribute = f' s="{style}"' if style else ""
        parts = [f'<row r="{row}">']
        for column, value in zip(columns, cells, strict=False):
            if value is None or value == "":
                continue
            if isinstance(value, int):
                # int() writes a bool as 1 or 0, not as True or False.
                parts.append(f'<c r="{column}{row}"{style_attribute}><v>{int(value)}</v></c>')
            elif value.isdigit() and len(value) <= MAX_CELL_CHARS:
                # Most cells of a result file are numbers as text: nothing to escape.
                parts.append(
                    f'<c r="{column}{row}"{style_attribute} t="inlineStr"><is><t>{value}</t></is></c>'
                )
            else:
                parts.append(text_cell(column + row, value, style_attribute))
        if tail is not None:
            parts.append(tail.xml(row))
        parts.append("</row>")
        buffer = self._buffer
        buffer.append("".join(parts))
        if len(buffer) >= ROWS_PER_WRITE:
            self._flush()

    def detach(self) -> Segment:
        """Close the spool and return it as a segment that ends at this writer's last row.

        For a writer that only produced rows for another sheet: the spool file
        is then the receiving sheet's to pack and remove.
        """
        self._flush()
        if self._compressor is not None:
            self._spool.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._spool.close()
        return Segment(
            self.spool_path,
            self.rows,
            deflated=self._compressor is not None,
            size=self._size,
            crc=self._crc,
        )

    def append_segment(self, segment: Segment) -> None:
        """Add a detached segment's rows, which must begin right after this sheet's last row."""
        self._close_spool()
        self._segments.append(segment)
        self.rows = segment.last_row
        # Rows appended after the segment go to a spool file of their own.
        base = self._spool_base
        self.spool_path = base.with_name(f"{base.stem}-{len(self._segments)}{base.suffix}")
        self._spool = self.spool_path.open("wb")

    def finish(self) -> tuple[bytes, list[Segment], bytes]:
        """Close the spool; return the XML before the rows, the row segments, and the XML after."""
        self._close_spool()
        return self._head().encode(), list(self._segments), b"</sheetData></worksheet>"

    def discard(self) -> None:
        self._spool.close()
        self.spool_path.unlink(missing_ok=True)
        for segment in self._segments:
            segment.path.unlink(missing_ok=True)

    def _close_spool(self) -> None:
        """Close this writer's own spool file and list it as a plain segment."""
        self._flush()
        self._spool.close()
        self._segments.append(Segment(self.spool_path, self.rows))

    def _flush(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode()
        self._buffer = []
        if self._compressor is None:
            self._spool.write(data)
            return
        self._size += len(data)
        self._crc = zlib.crc32(data, self._crc)
        self._spool.write(self._compressor.compress(data))

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
            head, segments, tail = sheet.finish()
            _write_sheet_member(archive, f"xl/worksheets/sheet{number}.xml", head, segments, tail)

    def _discard(self) -> None:
        for sheet in self._sheets:
            sheet.discard()
        self._sheets = []
        self._directory.cleanup()


def _write_sheet_member(
    archive: zipfile.ZipFile, name: str, head: bytes, segments: list[Segment], tail: bytes
) -> None:
    """Write a sheet's XML as one deflated member: plain parts compressed here, deflated copied.

    zipfile compresses everything it is given, so the member is opened with a
    pass-through compressor and its CRC and size are set before it closes.
    The deflate stream is: head and plain segments compressed by one
    compressor, which a full flush ends before each deflated segment (so
    nothing after refers back into it), the deflated segments as written,
    and a final block.
    """
    info = zipfile.ZipInfo(name, time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    # Python 3.11 has no public field for a member's level (3.13 adds compress_level).
    info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
    # With the size known up front, zipfile uses ZIP64 only past 4 GiB.
    info.file_size = (
        len(head)
        + sum(
            segment.size if segment.deflated else segment.path.stat().st_size
            for segment in segments
        )
        + len(tail)
    )
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = size = 0
    with archive.open(info, "w") as member:
        # NOTE: relies on zipfile._ZipWriteFile's _compressor, _crc and _file_size,
        # as in CPython 3.11; testzip() in the tests checks the result.
        member._compressor = _PassThrough()  # type: ignore[attr-defined]

        def put(data: bytes) -> None:
            nonlocal crc, size
            crc = zlib.crc32(data, crc)
            size += len(data)
            member.write(compressor.compress(data))

        put(head)
        for segment in segments:
            with segment.path.open("rb") as spool:
                if not segment.deflated:
                    while block := spool.read(SPOOL_BLOCK_BYTES):
                        put(block)
                    continue
                member.write(compressor.flush(zlib.Z_FULL_FLUSH))
                while block := spool.read(SPOOL_BLOCK_BYTES):
                    member.write(block)
            crc = crc32_combine(crc, segment.crc, segment.size)
            size += segment.size
        put(tail)
        member.write(compressor.flush())
        member._crc = crc  # type: ignore[attr-defined]
        member._file_size = size  # type: ignore[attr-defined]


class _PassThrough:
    """A zipfile compressor for data that is deflated already."""

    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


_ZERO_BLOCK = bytes(SPOOL_BLOCK_BYTES)


def crc32_combine(first: int, second: int, second_length: int) -> int:
    """Return the CRC-32 of A + B from A's CRC, B's CRC and B's length.

    CRC-32 is affine in its start value: starting from ``first`` instead of 0
    changes the CRC of B exactly as it changes the CRC of as many zero bytes.
    """
    return second ^ _crc32_of_zeros(second_length, first) ^ _crc32_of_zeros(second_length, 0)


def _crc32_of_zeros(length: int, start: int) -> int:
    crc = start
    while length > 0:
        block = _ZERO_BLOCK if length >= len(_ZERO_BLOCK) else bytes(length)
        crc = zlib.crc32(block, crc)
        length -= len(block)
    return crc


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
