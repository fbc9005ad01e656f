"""Write a job's result rows as CSV (UTF-8 with BOM) or XLSX, streaming in constant memory.

Both formats carry, per row: the source row number, the original cells, the
canonical number, the status code and its Chinese label, the carrier and a
reason or note. Every text cell passes ``protect_cell`` so no cell can start
a formula. The XLSX file opens on a summary sheet with counts by status and by
carrier; ``batch.xlsx`` spools each sheet to disk as it is written, so the
summary can be filled at the end while memory stays constant.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Any, Generic, TypeVar

from phonestatus.batch.results import (
    ResultRow,
    carrier_label_zh,
    status_label_en,
    status_label_zh,
)
from phonestatus.batch.safety import FORMULA_TRIGGERS, protect_cell
from phonestatus.batch.xlsx import (
    BOLD_STYLE,
    SPOOL_BLOCK_BYTES,
    CellRun,
    Segment,
    SheetWriter,
    StreamingWorkbook,
)

RESULT_HEADERS = (
    "号码 Number",
    "状态码 Status",
    "状态 Status (zh)",
    "运营商 Carrier",
    "说明 Reason",
)
ROW_NUMBER_HEADER = "行号 Row"
SUMMARY_SHEET_TITLE = "汇总 Summary"
RESULTS_SHEET_TITLE = "结果 Results"
# First characters that make protect_cell act; a set lookup skips the call for most cells.
_TRIGGER_FIRST = frozenset(FORMULA_TRIGGERS)
# Excel's hard limit is 1,048,576 rows per sheet; the header takes one.
XLSX_MAX_DATA_ROWS = 1_048_575

T = TypeVar("T")


class OutputFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @classmethod
    def from_filename(cls, filename: str) -> OutputFormat:
        suffix = PurePath(filename).suffix.lower().lstrip(".")
        try:
            return cls(suffix)
        except ValueError:
            raise ValueError(
                f"unsupported output file {filename!r}: expected a .csv or .xlsx name"
            ) from None


@dataclass
class OutputSummary:
    """Row counts collected while writing, shown on the summary sheet."""

    rows: int = 0
    invalid_rows: int = 0
    duplicate_rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_carrier: Counter[str] = field(default_factory=Counter)

    def add(self, row: ResultRow, count: int = 1) -> None:
        """Count ``count`` rows that read like ``row``."""
        self.rows += count
        self.by_status[row.outcome] += count
        if row.number is None:
            self.invalid_rows += count
        if row.duplicate:
            self.duplicate_rows += count
        if row.carrier:
            self.by_carrier[row.carrier] += count

    def add_counts(self, other: OutputSummary) -> None:
        self.rows += other.rows
        self.invalid_rows += other.invalid_rows
        self.duplicate_rows += other.duplicate_rows
        self.by_status.update(other.by_status)
        self.by_carrier.update(other.by_carrier)


@dataclass(frozen=True, slots=True)
class OutputLayout:
    """Column layout: the source header (if any) and how many original cells to show."""

    source_header: tuple[str, ...] | None
    source_width: int

    def header(self) -> list[str]:
        original = list(self.source_header or ())
        for position in range(len(original), self.source_width):
            original.append(f"第{position + 1}列 Column {position + 1}")
        return [ROW_NUMBER_HEADER, *original, *RESULT_HEADERS]

    def cells(self, row: ResultRow) -> list[str]:
        original = list(row.cells) + [""] * (self.source_width - len(row.cells))
        outcome = row.outcome
        return [
            str(row.row_number),
            *original,
            row.number or "",
            outcome,
            status_label_zh(outcome),
            carrier_label_zh(row.carrier),
            row.note,
        ]


class RowFormatter(Generic[T]):
    """Turn result rows into protected output cells, counting them for the summary.

    ``OutputLayout.cells`` spells out one row. Here the four result cells
    (the tail) are built once per distinct (result, duplicate) pair, because a
    file has millions of rows but only a few dozen such pairs, and the rows are
    counted per pair. Invalid rows, whose reason text varies, take the plain
    path. ``make_tail`` turns the tail's texts into what the writer uses: a
    tuple for CSV, a ``CellRun`` for XLSX.
    """

    def __init__(self, layout: OutputLayout, make_tail: Callable[[tuple[str, ...]], T]) -> None:
        self.layout = layout
        self._make_tail = make_tail
        self._tails: dict[tuple[int, bool], T] = {}
        self._samples: dict[tuple[int, bool], ResultRow] = {}
        self._counts: Counter[tuple[int, bool]] = Counter()
        self._invalid = OutputSummary()

    def header(self) -> list[str]:
        return [protect_cell(cell) for cell in self.layout.header()]

    def split(self, row: ResultRow) -> tuple[list[Any], T]:
        """Return the row's leading cells and its tail, every text passed through ``protect_cell``.

        The leading cells are the row number (an int), the original cells and
        the canonical number.
        """
        if row.number is None:
            self._invalid.add(row)
            cells = [protect_cell(cell) for cell in self.layout.cells(row)]
            return [row.row_number, *cells[1:-4]], self._make_tail(tuple(cells[-4:]))

        # Keyed by identity: hashing the result per row costs more than the lookup
        # saves. Equal results in separate objects only get separate entries, and
        # the sample row keeps each keyed object alive, so no id is reused.
        key = (id(row.result), row.duplicate)
        tail = self._tails.get(key)
        if tail is None:
            texts = tuple(protect_cell(cell) for cell in self.layout.cells(row)[-4:])
            tail = self._tails[key] = self._make_tail(texts)
            self._samples[key] = row
        self._counts[key] += 1
        lead: list[Any] = [row.row_number]
        lead += [protect_cell(cell) if cell[:1] in _TRIGGER_FIRST else cell for cell in row.cells]
        missing = self.layout.source_width - len(row.cells)
        if missing > 0:
            lead += [""] * missing
        lead.append(row.number)
        return lead, tail

    def summary(self) -> OutputSummary:
        """Return the counts of every row formatted so far."""
        summary = OutputSummary()
        summary.add_counts(self._invalid)
        for key, count in self._counts.items():
            summary.add(self._samples[key], count)
        return summary


def csv_cells(formatter: RowFormatter[tuple[str, ...]], row: ResultRow) -> list[str]:
    """Return the row's CSV cells."""
    lead, tail = formatter.split(row)
    lead[0] = str(lead[0])
    lead += tail
    return lead


def write_csv(path: Path, layout: OutputLayout, rows: Iterable[ResultRow]) -> OutputSummary:
    """Write a CSV file in UTF-8 with a BOM, so Excel shows Chinese text correctly."""
    formatter = RowFormatter(layout, tuple)
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(formatter.header())
        writer.writerows(csv_cells(formatter, row) for row in rows)
    return formatter.summary()


@dataclass
class PartOutput:
    """The output of writing one part of a job's rows, for ``append_csv_part`` or ``assemble_xlsx``.

    ``segments`` are (results sheet index, deflated segment) for XLSX, in
    order; for CSV one (0, segment) entry whose last row is the row count.
    """

    summary: OutputSummary
    segments: list[tuple[int, Segment]]


def csv_rows_part(path: Path, layout: OutputLayout, rows: Iterable[ResultRow]) -> PartOutput:
    """Write rows as CSV lines with no BOM and no header, to follow another part's."""
    formatter = RowFormatter(layout, tuple)
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(csv_cells(formatter, row) for row in rows)
    summary = formatter.summary()
    return PartOutput(summary, [(0, Segment(path, summary.rows))])


def append_csv_part(path: Path, part: PartOutput) -> None:
    """Append a part written by ``csv_rows_part`` to the CSV file at ``path``."""
    with path.open("ab") as output:
        for _, segment in part.segments:
            with segment.path.open("rb") as source:
                shutil.copyfileobj(source, output, SPOOL_BLOCK_BYTES)


def write_xlsx(
    path: Path,
    layout: OutputLayout,
    rows: Iterable[ResultRow],
    *,
    job_facts: Sequence[tuple[str, Any]] = (),
    sheet_per_status: bool = False,
) -> OutputSummary:
    """Write an XLSX workbook: a summary sheet, the rows, and optionally one sheet per status.

    ``job_facts`` are (label, value) pairs shown at the top of the summary
    sheet. Rows beyond one sheet's capacity continue on further row sheets.
    """
    formatter = RowFormatter(layout, _cell_run_maker(layout))
    with StreamingWorkbook(path) as workbook:
        summary_sheet = workbook.add_sheet(SUMMARY_SHEET_TITLE)
        header = formatter.header()
        row_sheets = _SheetSeries(workbook, RESULTS_SHEET_TITLE, header)
        status_sheets: dict[str, _SheetSeries] = {}

        for row in rows:
            lead, tail = formatter.split(row)
            row_sheets.append(lead, tail)
            if sheet_per_status:
                outcome = row.outcome
                if outcome not in status_sheets:
                    title = f"{status_label_zh(outcome)} {outcome}"
                    status_sheets[outcome] = _SheetSeries(workbook, title, header)
                status_sheets[outcome].append(lead, tail)

        summary = formatter.summary()
        _fill_summary(summary_sheet, summary, job_facts)
    return summary


def xlsx_rows_part(
    directory: Path,
    layout: OutputLayout,
    rows: Iterable[ResultRow],
    *,
    first_data_row: int,
    name: str,
) -> PartOutput:
    """Write the results-sheet XML of rows that start at ``first_data_row`` (0-based).

    The rows go to spool files in ``directory`` named after ``name``, one per
    results sheet they fall on, numbered as ``write_xlsx`` numbers them.
    ``assemble_xlsx`` packs the parts into a workbook.
    """
    formatter = RowFormatter(layout, _cell_run_maker(layout))
    segments: list[tuple[int, Segment]] = []
    sheet: SheetWriter | None = None
    sheet_index = 0
    data_row = first_data_row
    for row in rows:
        if sheet is None or sheet.rows > XLSX_MAX_DATA_ROWS:
            if sheet is not None:
                segments.append((sheet_index, sheet.detach()))
            sheet_index, offset = divmod(data_row, XLSX_MAX_DATA_ROWS)
            spool = directory / f"{name}-{sheet_index + 1}.xml"
            # Row 1 is the header, which the receiving sheet writes.
            sheet = SheetWriter(RESULTS_SHEET_TITLE, spool, start_row=offset + 2, deflate=True)
        lead, tail = formatter.split(row)
        sheet.append(lead, tail=tail)
        data_row += 1
    if sheet is not None:
        segments.append((sheet_index, sheet.detach()))
    return PartOutput(formatter.summary(), segments)


def assemble_xlsx(
    path: Path,
    layout: OutputLayout,
    parts: Sequence[PartOutput],
    *,
    job_facts: Sequence[tuple[str, Any]] = (),
) -> OutputSummary:
    """Pack parts written by ``xlsx_rows_part``, in row order, into a workbook like ``write_xlsx``.

    The parts' spool files are removed.
    """
    summary = OutputSummary()
    header = RowFormatter(layout, tuple).header()
    try:
        with StreamingWorkbook(path) as workbook:
            summary_sheet = workbook.add_sheet(SUMMARY_SHEET_TITLE)
            row_sheets = _SheetSeries(workbook, RESULTS_SHEET_TITLE, header)
            for part in parts:
                summary.add_counts(part.summary)
                for sheet_index, segment in part.segments:
                    row_sheets.attach(sheet_index, segment)
            _fill_summary(summary_sheet, summary, job_facts)
    finally:
        for part in parts:
            for _, segment in part.segments:
                segment.path.unlink(missing_ok=True)
    return summary


def _cell_run_maker(layout: OutputLayout) -> Callable[[tuple[str, ...]], CellRun]:
    # The tail follows the row number, the original cells and the number.
    first_column = layout.source_width + 2
    return lambda texts: CellRun(first_column, texts)


class _SheetSeries:
    """Rows spread over as many sheets as needed, each starting with the header."""

    def __init__(self, workbook: StreamingWorkbook, title: str, header: list[str]) -> None:
        self.workbook = workbook
        self.title = _sheet_title(title)
        self.header = header
        self.sheets: list[SheetWriter] = []

    def append(self, lead: list[Any], tail: CellRun) -> None:
        """Write a row whose texts already passed ``protect_cell``."""
        sheet = self.sheets[-1] if self.sheets else None
        if sheet is None or sheet.rows > XLSX_MAX_DATA_ROWS:
            sheet = self._start_sheet()
        sheet.append(lead, tail=tail)

    def attach(self, sheet_index: int, segment: Segment) -> None:
        """Add a segment of rows to the ``sheet_index``-th sheet (0-based)."""
        while len(self.sheets) <= sheet_index:
            self._start_sheet()
        self.sheets[sheet_index].append_segment(segment)

    def _start_sheet(self) -> SheetWriter:
        suffix = "" if not self.sheets else f" {len(self.sheets) + 1}"
        sheet = self.workbook.add_sheet(_sheet_title(self.title, suffix))
        sheet.freeze_rows(1)
        sheet.append(self.header, style=BOLD_STYLE)
        self.sheets.append(sheet)
        return sheet


def _sheet_title(title: str, suffix: str = "") -> str:
    # Excel sheet names: at most 31 characters, none of []:*?/\ .
    cleaned = "".join(" " if character in "[]:*?/\\" else character for character in title)
    return cleaned[: 31 - len(suffix)] + suffix


def _fill_summary(
    sheet: SheetWriter, summary: OutputSummary, job_facts: Sequence[tuple[str, Any]]
) -> None:
    sheet.set_width(0, 40)
    sheet.set_width(1, 24)

    def put(label: str, value: Any, *, is_heading: bool = False) -> None:
        style = BOLD_STYLE if is_heading else 0
        if isinstance(value, int) and not isinstance(value, bool):
            sheet.append([protect_cell(label), value], style=style)
        elif value is not None:
            sheet.append([protect_cell(label), protect_cell(str(value))], style=style)
        else:
            sheet.append([protect_cell(label)], style=style)

    for label, value in job_facts:
        put(label, value)
    put("总行数 Rows", summary.rows)
    put("无效行 Invalid rows", summary.invalid_rows)
    put("重复行 Duplicate rows", summary.duplicate_rows)
    sheet.append([])

    put("按状态 By status", "行数 Rows", is_heading=True)
    for outcome, count in summary.by_status.most_common():
        put(f"{outcome} {status_label_zh(outcome)} ({status_label_en(outcome)})", count)
    sheet.append([])

    put("按运营商 By carrier", "行数 Rows", is_heading=True)
    for carrier, count in summary.by_carrier.most_common():
        put(f"{carrier} {carrier_label_zh(carrier)}", count)
