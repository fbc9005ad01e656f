from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from phonestatus.batch.results import (
    NumberResult,
    ResultRow,
    decode_chunk_results,
    encode_chunk_results,
)
from phonestatus.batch.safety import protect_cell
from phonestatus.batch.writers import (
    OutputFormat,
    OutputLayout,
    OutputSummary,
    PartOutput,
    RowFormatter,
    append_csv_part,
    assemble_xlsx,
    csv_cells,
    csv_rows_part,
    write_csv,
    write_xlsx,
    xlsx_rows_part,
)

NORMAL = NumberResult("OK", "NORMAL", "CMCC", billable=True, ported=False)
SHUTDOWN_PORTED = NumberResult("OK", "SHUTDOWN", "CUCC", billable=True, ported=True)
LIMITED = NumberResult("OperatorLimit", None, None, billable=False, ported=False)
ROWS = [
    ResultRow(2, ("张三", "13800138000"), "13800138000", NORMAL),
    ResultRow(
        3, ("李四", "1.38001E+10"), None, None, reason_code="PRECISION_LOST", reason_zh="丢失数字"
    ),
    ResultRow(4, ("王五", "138 0013 8000"), "13800138000", NORMAL, duplicate=True),
    ResultRow(5, ("赵六", "13012345678"), "13012345678", SHUTDOWN_PORTED),
    ResultRow(6, ("钱七", "19212345678", "extra"), "19212345678", LIMITED),
    ResultRow(7, ("孙八", "13900000000"), "13900000000", None),
]
LAYOUT = OutputLayout(source_header=("姓名", "手机号"), source_width=3)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


class TestOutputFormat:
    def test_from_filename(self) -> None:
        assert OutputFormat.from_filename("out.XLSX") is OutputFormat.XLSX
        assert OutputFormat.from_filename("out.csv") is OutputFormat.CSV

    def test_from_filename_unsupported(self) -> None:
        with pytest.raises(ValueError, match=r"out\.xls"):
            OutputFormat.from_filename("out.xls")


# Rows whose cells need protection, repeats of one result with and without the duplicate mark.
FORMULA_ROWS = [
    ResultRow(8, ("=HYPERLINK(1)", "13800138000"), "13800138000", NORMAL),
    ResultRow(9, ("+86", "-1", "@x"), "13800138000", NORMAL, duplicate=True),
    ResultRow(10, ("\tx",), None, None, reason_code="NOT_A_NUMBER", reason_zh="=bad"),
    ResultRow(11, ("ok", "13012345678"), "13012345678", SHUTDOWN_PORTED, duplicate=True),
]


class TestRowFormatter:
    def test_cells_match_layout(self) -> None:
        formatter = RowFormatter(LAYOUT, tuple)

        for row in [*ROWS, *FORMULA_ROWS, *ROWS]:
            expected = [protect_cell(cell) for cell in LAYOUT.cells(row)]
            assert csv_cells(formatter, row) == expected, f"row {row.row_number}"

    def test_summary_matches_per_row_counts(self) -> None:
        formatter = RowFormatter(LAYOUT, tuple)
        expected = OutputSummary()

        for row in [*ROWS, *FORMULA_ROWS, *ROWS]:
            formatter.split(row)
            expected.add(row)

        assert formatter.summary() == expected

    def test_header_protected(self) -> None:
        layout = OutputLayout(source_header=("=cmd", "手机号"), source_width=2)

        assert RowFormatter(layout, tuple).header()[1] == "'=cmd"


class TestWriteCsv:
    def test_write_csv_starts_with_bom(self, tmp_path: Path) -> None:
        path = tmp_path / "out.csv"

        write_csv(path, LAYOUT, ROWS)

        assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    def test_write_csv_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "out.csv"

        write_csv(path, LAYOUT, ROWS)
        records = read_csv(path)

        assert records[0] == [
            "行号 Row",
            "姓名",
            "手机号",
            "第3列 Column 3",
            "号码 Number",
            "状态码 Status",
            "状态 Status (zh)",
            "运营商 Carrier",
            "说明 Reason",
        ]
        assert records[1] == [
            "2",
            "张三",
            "13800138000",
            "",
            "13800138000",
            "NORMAL",
            "正常",
            "中国移动",
            "",
        ]
        assert records[2][4:] == ["", "INVALID", "号码无效", "", "丢失数字"]
        assert "重复" in records[3][8]
        assert records[4][5:8] == ["SHUTDOWN", "停机", "中国联通"]
        assert "携号转网" in records[4][8]
        assert records[5][3] == "extra"
        assert records[5][5:7] == ["OperatorLimit", "运营商限制"]
        assert records[6][5:7] == ["NOT_QUERIED", "未查询"]

    def test_write_csv_summary_counts(self, tmp_path: Path) -> None:
        summary = write_csv(tmp_path / "out.csv", LAYOUT, ROWS)

        assert summary.rows == 6
        assert summary.invalid_rows == 1
        assert summary.duplicate_rows == 1
        assert summary.by_status["NORMAL"] == 2
        assert summary.by_carrier["CMCC"] == 2
        assert summary.by_carrier["CUCC"] == 1


class TestWriteXlsx:
    def test_write_xlsx_summary_sheet_first(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"

        write_xlsx(path, LAYOUT, ROWS, job_facts=[("任务 Job", "job_x")])
        workbook = openpyxl.load_workbook(path, read_only=True)

        assert workbook.sheetnames == ["汇总 Summary", "结果 Results"]
        summary = {row[0]: row[1] for row in workbook["汇总 Summary"].iter_rows(values_only=True)}
        assert summary["任务 Job"] == "job_x"
        assert summary["总行数 Rows"] == 6
        assert summary["无效行 Invalid rows"] == 1
        assert summary["NORMAL 正常 (In service)"] == 2
        assert summary["CMCC 中国移动"] == 2
        workbook.close()

    def test_write_xlsx_cells(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"

        write_xlsx(path, LAYOUT, ROWS)
        workbook = openpyxl.load_workbook(path, read_only=True)
        rows = list(workbook["结果 Results"].iter_rows(values_only=True))
        workbook.close()

        assert rows[0][0] == "行号 Row"
        # The row number is a number, so the sheet sorts by it; the rest is text.
        assert rows[1] == (
            2,
            "张三",
            "13800138000",
            None,
            "13800138000",
            "NORMAL",
            "正常",
            "中国移动",
            None,
        )
        assert rows[2][5] == "INVALID"
        assert len(rows) == 7

    def test_write_xlsx_sheet_per_status(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"

        write_xlsx(path, LAYOUT, ROWS, sheet_per_status=True)
        workbook = openpyxl.load_workbook(path, read_only=True)
        names = workbook.sheetnames
        normal_rows = list(workbook["正常 NORMAL"].iter_rows(values_only=True))
        workbook.close()

        assert names[:2] == ["汇总 Summary", "结果 Results"]
        assert set(names[2:]) == {
            "正常 NORMAL",
            "号码无效 INVALID",
            "停机 SHUTDOWN",
            "运营商限制 OperatorLimit",
            "未查询 NOT_QUERIED",
        }
        assert len(normal_rows) == 3


class TestSheetOverflow:
    def test_write_xlsx_continues_on_next_sheet(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("phonestatus.batch.writers.XLSX_MAX_DATA_ROWS", 4)
        path = tmp_path / "out.xlsx"

        write_xlsx(path, LAYOUT, ROWS)
        workbook = openpyxl.load_workbook(path, read_only=True)
        names = workbook.sheetnames
        second = list(workbook["结果 Results 2"].iter_rows(values_only=True))
        workbook.close()

        assert names == ["汇总 Summary", "结果 Results", "结果 Results 2"]
        assert second[0][0] == "行号 Row"
        assert [row[0] for row in second[1:]] == [6, 7]


def read_workbook(path: Path) -> dict[str, list[tuple[object, ...]]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return {
            name: list(workbook[name].iter_rows(values_only=True)) for name in workbook.sheetnames
        }
    finally:
        workbook.close()


ALL_ROWS = [*ROWS, *FORMULA_ROWS, *ROWS]


class TestParts:
    """Rows written in parts, as two processes write them, equal rows written in one go."""

    @pytest.mark.parametrize("split", [0, 1, 5, len(ALL_ROWS)])
    def test_csv_parts_equal_one_file(self, tmp_path: Path, split: int) -> None:
        whole = tmp_path / "whole.csv"
        write_csv(whole, LAYOUT, ALL_ROWS)
        joined = tmp_path / "joined.csv"

        first = write_csv(joined, LAYOUT, ALL_ROWS[:split])
        part = csv_rows_part(tmp_path / "part.csv", LAYOUT, ALL_ROWS[split:])
        append_csv_part(joined, part)

        assert joined.read_bytes() == whole.read_bytes()
        first.add_counts(part.summary)
        assert first == write_csv(tmp_path / "again.csv", LAYOUT, ALL_ROWS)

    @pytest.mark.parametrize(("split", "sheet_rows"), [(0, 100), (6, 100), (6, 4), (9, 4), (1, 1)])
    def test_xlsx_parts_equal_one_workbook(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: int, sheet_rows: int
    ) -> None:
        monkeypatch.setattr("phonestatus.batch.writers.XLSX_MAX_DATA_ROWS", sheet_rows)
        facts = [("任务 Job", "job_x")]
        whole = tmp_path / "whole.xlsx"
        write_xlsx(whole, LAYOUT, ALL_ROWS, job_facts=facts)
        parts: list[PartOutput] = [
            xlsx_rows_part(tmp_path, LAYOUT, ALL_ROWS[:split], first_data_row=0, name="a"),
            xlsx_rows_part(tmp_path, LAYOUT, ALL_ROWS[split:], first_data_row=split, name="b"),
        ]
        joined = tmp_path / "joined.xlsx"

        summary = assemble_xlsx(joined, LAYOUT, parts, job_facts=facts)

        assert read_workbook(joined) == read_workbook(whole)
        assert summary.rows == len(ALL_ROWS)
        assert sorted(path.name for path in tmp_path.iterdir()) == ["joined.xlsx", "whole.xlsx"]


class TestChunkResults:
    def test_round_trip_keeps_order_and_sharing(self) -> None:
        results = [NORMAL, LIMITED, NORMAL, SHUTDOWN_PORTED, NORMAL]

        distinct, positions = decode_chunk_results(encode_chunk_results(results))

        assert [distinct[position] for position in positions] == results
        assert len(distinct) == 3

    def test_older_per_number_lists_still_read(self) -> None:
        """Chunks stored before the compact form hold one list per number."""
        stored = [result.to_list() for result in (NORMAL, LIMITED, NORMAL)]

        distinct, positions = decode_chunk_results(stored)

        assert [distinct[position] for position in positions] == [NORMAL, LIMITED, NORMAL]
