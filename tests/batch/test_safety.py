from __future__ import annotations

import csv
from pathlib import Path

import pytest

from phonestatus.batch.readers import ReaderLimits, open_source
from phonestatus.batch.results import NumberResult, ResultRow
from phonestatus.batch.safety import protect_cell, unprotect_cell
from phonestatus.batch.writers import OutputLayout, write_csv, write_xlsx

DANGEROUS = ["=1+1", "+8613800138000", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']
LIMITS = ReaderLimits(max_file_bytes=10**7, max_rows=1000, max_xlsx_uncompressed_bytes=10**8)


class TestProtectCell:
    @pytest.mark.parametrize("text", DANGEROUS)
    def test_protect_cell_prefixes_formula_triggers(self, text: str) -> None:
        assert protect_cell(text) == "'" + text

    @pytest.mark.parametrize("text", ["13800138000", "张三", "", "'already quoted", "a=b"])
    def test_protect_cell_leaves_plain_text(self, text: str) -> None:
        assert protect_cell(text) == text

    @pytest.mark.parametrize("text", [*DANGEROUS, "13800138000", "'13800138000", "'", ""])
    def test_unprotect_cell_inverts_protect_cell(self, text: str) -> None:
        assert unprotect_cell(protect_cell(text)) == text

    def test_unprotect_cell_keeps_user_apostrophe(self) -> None:
        assert unprotect_cell("'13800138000") == "'13800138000"


class TestRoundTrip:
    @pytest.mark.parametrize("suffix", ["csv", "xlsx"])
    def test_result_file_reuploads_with_original_cells(self, tmp_path: Path, suffix: str) -> None:
        cells = ("=cmd|' /C calc'!A0", "+86 138 0013 8000", "@x", "-1")
        row = ResultRow(
            row_number=2,
            cells=cells,
            number="13800138000",
            result=NumberResult("OK", "NORMAL", "CMCC", billable=True, ported=False),
        )
        layout = OutputLayout(source_header=("备注", "phone", "c", "d"), source_width=4)
        path = tmp_path / f"result.{suffix}"
        if suffix == "csv":
            write_csv(path, layout, [row])
        else:
            write_xlsx(path, layout, [row])

        source = open_source(path, limits=LIMITS, column="phone")
        rows = list(source.rows)

        assert rows[0].cells[1:5] == cells
        assert rows[0].value == "+86 138 0013 8000"

    def test_written_csv_has_no_formula_cell(self, tmp_path: Path) -> None:
        row = ResultRow(row_number=1, cells=tuple(DANGEROUS), number=None, result=None)
        layout = OutputLayout(source_header=None, source_width=len(DANGEROUS))
        path = tmp_path / "result.csv"

        write_csv(path, layout, [row])

        with path.open(encoding="utf-8-sig", newline="") as stream:
            records = list(csv.reader(stream))
        for record in records:
            for cell in record:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
