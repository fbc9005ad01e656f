"""Stream the rows of an uploaded TXT, CSV or XLSX file, with the number cell picked out.

Text files are never held whole: they are decoded line by line after a first
pass that settles the encoding. XLSX sheets are read by python-calamine,
which loads one sheet at a time, after the archive passed the
decompressed-size guard.

Text encodings are tried in this order: a byte order mark (UTF-8, UTF-16),
then strict UTF-8 over the whole file, then GB18030. GBK is never tried
before UTF-8 because many UTF-8 byte sequences are also valid GBK, so a
UTF-8 file would decode into garbage without any error.
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from phonestatus.batch.errors import (
    ArchiveTooLarge,
    BatchFileError,
    EmptyFile,
    FileTooLarge,
    NumberColumnNotFound,
    TooManyRows,
    UndecodableFile,
    UnsupportedFormat,
)
from phonestatus.batch.safety import PROTECTIVE_PREFIX, unprotect_cell
from phonestatus.batch.writers import RESULTS_SHEET_TITLE

if TYPE_CHECKING:
    from phonestatus.settings import Settings

READ_BLOCK_BYTES = 1024 * 1024
# Header names that mark the number column, most specific first. Matching
# ignores case, spaces, underscores and hyphens.
NUMBER_HEADERS = (
    "手机号码",
    "手机号",
    "手机",
    "号码",
    "电话号码",
    "电话",
    "联系电话",
    "mobile",
    "mobilenumber",
    "phone",
    "phonenumber",
    "msisdn",
    "number",
    "tel",
)
# Substrings that mark a number column when no header matches exactly, e.g. 客户手机号.
NUMBER_HEADER_FRAGMENTS = ("手机", "电话", "号码", "mobile", "phone")
CSV_DELIMITERS = (",", "\t", ";", "|")


class FileFormat(StrEnum):
    TXT = "txt"
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    max_file_bytes: int
    max_rows: int
    max_xlsx_uncompressed_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReaderLimits:
        return cls(
            max_file_bytes=settings.batch_max_file_bytes,
            max_rows=settings.batch_max_rows,
            max_xlsx_uncompressed_bytes=settings.batch_max_xlsx_uncompressed_bytes,
        )


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: its 1-based row (line) number in the file, all cells as text, the number cell."""

    row_number: int
    cells: tuple[str, ...]
    value: str


@dataclass(frozen=True, slots=True)
class BatchSource:
    """An opened batch file: the settled layout and an iterator over its data rows."""

    file_format: FileFormat
    encoding: str | None
    header: tuple[str, ...] | None
    column_index: int
    rows: Iterator[SourceRow]
    # About how many rows the file contains (estimated for text files), to size tables up front.
    expected_rows: int = 0


def detect_format(filename: str) -> FileFormat:
    """Return the file format named by the file's extension; raise ``UnsupportedFormat``."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".txt", ".text"):
        return FileFormat.TXT
    if suffix in (".csv", ".tsv"):
        return FileFormat.CSV
    if suffix in (".xlsx", ".xlsm"):
        return FileFormat.XLSX
    raise UnsupportedFormat(filename)


def open_source(
    path: Path,
    *,
    limits: ReaderLimits,
    filename: str | None = None,
    file_format: FileFormat | None = None,
    column: str | None = None,
) -> BatchSource:
    """Open ``path`` and settle its encoding and number column.

    ``filename`` is the name the user gave, used for the format and in
    messages. ``column`` selects the number column by header text or 1-based
    position; without it the header decides. Raises a ``BatchFileError``.
    """
    name = filename or path.name
    file_format = file_format or detect_format(name)
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise FileTooLarge(size, limits.max_file_bytes)

    if file_format is FileFormat.XLSX:
        check_archive(path, limits.max_xlsx_uncompressed_bytes)
        sheet = _xlsx_sheet(path, name)
        expected_rows = sheet.height
        raw_rows = _xlsx_rows(sheet)
        encoding = None
    else:
        encoding = detect_encoding(path, name)
        expected_rows = _estimate_lines(path, size)
        if file_format is FileFormat.TXT:
            raw_rows = _txt_rows(path, encoding)
        else:
            raw_rows = _csv_rows(path, encoding, name)

    first = next(raw_rows, None)
    if first is None:
        raise EmptyFile(name)
    header, column_index = _settle_layout(first[1], column, is_txt=file_format is FileFormat.TXT)
    rows = _data_rows(first, raw_rows, header is not None, column_index, limits.max_rows)
    return BatchSource(
        file_format=file_format,
        encoding=encoding,
        header=header,
        column_index=column_index,
        rows=rows,
        expected_rows=min(expected_rows, limits.max_rows),
    )


def detect_encoding(path: Path, filename: str) -> str:
    """Return the codec name for a text file: BOM, then strict UTF-8, then GB18030."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"

    if _decodes_as(path, "utf-8"):
        return "utf-8"
    if _decodes_as(path, "gb18030"):
        return "gb18030"
    raise UndecodableFile(filename, "invalid byte sequences for both")


def _decodes_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as stream:
        try:
            while block := stream.read(READ_BLOCK_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def check_archive(path: Path, limit_bytes: int) -> None:
    """Raise ``ArchiveTooLarge`` if the XLSX parts decompress beyond ``limit_bytes``.

    The sizes in the zip directory are only claims, so each part is inflated
    and counted. Reading stops as soon as the total passes the limit.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BatchFileError(f"{path.name!r} is not a valid XLSX file: {exc}") from exc

    with archive:
        infos = archive.infolist()
        if sum(info.file_size for info in infos) > limit_bytes:
            raise ArchiveTooLarge(limit_bytes)
        total = 0
        for info in infos:
            try:
                with archive.open(info) as member:
                    while block := member.read(READ_BLOCK_BYTES):
                        total += len(block)
                        if total > limit_bytes:
                            raise ArchiveTooLarge(limit_bytes)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
                raise BatchFileError(f"XLSX part {info.filename!r} is damaged: {exc}") from exc


def _txt_rows(path: Path, encoding: str) -> Iterator[tuple[int, tuple[str, ...]]]:
    with path.open(encoding=encoding, newline=None) as stream:
        for line_number, line in enumerate(stream, start=1):
            yield line_number, (line.rstrip("\r\n"),)


def _csv_rows(path: Path, encoding: str, filename: str) -> Iterator[tuple[int, tuple[str, ...]]]:
    with path.open(encoding=encoding, newline="") as stream:
        first_line = stream.readline()
        delimiter = max(CSV_DELIMITERS, key=first_line.count) if first_line else ","
        stream.seek(0)
        reader = csv.reader(stream, delimiter=delimiter)
        row_number = 0
        try:
            for row_number, record in enumerate(reader, start=1):
                yield row_number, tuple(record)
        except csv.Error as exc:
            raise BatchFileError(
                f"{filename!r} is not valid CSV near row {row_number + 1}: {exc}"
            ) from exc


# Bytes of a text file sampled to estimate its line count.
ESTIMATE_SAMPLE_BYTES = 64 * 1024


def _estimate_lines(path: Path, size: int) -> int:
    """Estimate a text file's lines from its size and the line length of its start."""
    with path.open("rb") as stream:
        sample = stream.read(ESTIMATE_SAMPLE_BYTES)
    lines = sample.count(b"\n")
    if not sample or lines == 0:
        return 1
    return size * lines // len(sample) + 1


def _xlsx_sheet(path: Path, filename: str) -> Any:
    """Load the sheet that contains a workbook's rows (a python-calamine ``CalamineSheet``)."""
    # Imported here so text-only deployments do not load the native module.
    import python_calamine

    # NOTE: python-calamine loads the whole sheet before the first row, about
    # 1.2 bytes of memory per byte of sheet XML (measured: 130 MB for a million
    # two-column rows). PHONESTATUS_BATCH_MAX_XLSX_UNCOMPRESSED_BYTES bounds it;
    # openpyxl's streaming reader was 14 times slower on the same file.

    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        # A result file of ours opens on its summary; its rows are on the results sheet.
        if RESULTS_SHEET_TITLE in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(RESULTS_SHEET_TITLE)
        else:
            sheet = workbook.get_sheet_by_index(0)
    except python_calamine.CalamineError as exc:
        raise BatchFileError(f"cannot read {filename!r} as XLSX: {exc}") from exc
    return sheet


def _xlsx_rows(sheet: Any) -> Iterator[tuple[int, tuple[str, ...]]]:
    # The sheet's used range can start below row 1; keep spreadsheet row numbers.
    first_row = sheet.start[0] if sheet.start else 0
    try:
        for offset, record in enumerate(sheet.iter_rows()):
            yield first_row + offset + 1, tuple(map(_xlsx_cell_text, record))
    finally:
        del sheet
        release_free_memory()


def release_free_memory() -> None:
    """Return freed heap memory to the operating system where the C library can (glibc).

    python-calamine frees the sheet in many small blocks that glibc keeps for
    reuse: after a million-row sheet about 30 MB stayed resident that Python's
    own allocator, which maps its memory separately, never used again.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (AttributeError, OSError, TypeError):
        return
    trim(0)


def _xlsx_cell_text(value: object) -> str:
    """Return a cell as the text a user sees, keeping every digit of a numeric cell."""
    if isinstance(value, str):
        return value  # most cells: checked first, as this runs for every cell
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # An 11-digit number is far below 2**53, so a numeric cell stores it exactly.
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _normalise_header(text: str) -> str:
    return "".join(text.split()).replace("_", "").replace("-", "").lower()


def _settle_layout(
    first_cells: tuple[str, ...], column: str | None, *, is_txt: bool
) -> tuple[tuple[str, ...] | None, int]:
    """Return (header or None, number column index) from the first row and the user's choice."""
    cells = tuple(unprotect_cell(cell).strip() for cell in first_cells)
    if is_txt:
        is_title = _normalise_header(cells[0]) in NUMBER_HEADERS
        return (cells if is_title else None), 0

    if column is not None:
        wanted = column.strip()
        normalised = [_normalise_header(cell) for cell in cells]
        if _normalise_header(wanted) in normalised:
            return cells, normalised.index(_normalise_header(wanted))
        if wanted.isdigit() and int(wanted) >= 1:
            # A position may point past a short first row; the header is kept when it is one.
            index = int(wanted) - 1
            return (cells if _looks_like_header(cells) else None), index
        raise NumberColumnNotFound(column, cells)

    normalised = [_normalise_header(cell) for cell in cells]
    for name in NUMBER_HEADERS:
        if name in normalised:
            return cells, normalised.index(name)
    for fragment in NUMBER_HEADER_FRAGMENTS:
        for index, cell in enumerate(normalised):
            if fragment in cell:
                return cells, index

    for index, cell in enumerate(cells):
        if _looks_like_number(cell):
            return None, index
    if len(cells) == 1:
        # One column with an unrecognised title: the title row is reported as invalid.
        return None, 0
    raise NumberColumnNotFound(None, cells)


def _looks_like_number(cell: str) -> bool:
    digits = sum(character.isdigit() for character in cell)
    return digits >= 7


def _looks_like_header(cells: tuple[str, ...]) -> bool:
    return any(cell and not _looks_like_number(cell) for cell in cells)


def _data_rows(
    first: tuple[int, tuple[str, ...]],
    rest: Iterator[tuple[int, tuple[str, ...]]],
    has_header: bool,
    column_index: int,
    max_rows: int,
) -> Iterator[SourceRow]:
    count = 0
    if not has_header:
        rest = _chain_one(first, rest)
    for row_number, raw_cells in rest:
        joined = "".join(raw_cells)
        cells = raw_cells
        # Only a cell starting with an apostrophe can change, so most rows skip the map.
        if PROTECTIVE_PREFIX in joined:
            cells = tuple(map(unprotect_cell, raw_cells))
            joined = "".join(cells)
        if not joined.strip():
            continue
        count += 1
        if count > max_rows:
            raise TooManyRows(max_rows)
        value = cells[column_index] if column_index < len(cells) else ""
        yield SourceRow(row_number=row_number, cells=cells, value=value)


def _chain_one(
    first: tuple[int, tuple[str, ...]], rest: Iterator[tuple[int, tuple[str, ...]]]
) -> Iterator[tuple[int, tuple[str, ...]]]:
    yield first
    yield from rest
