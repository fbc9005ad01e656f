"""The streaming XLSX writer, read back cell by cell with openpyxl and python-calamine."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest
import python_calamine

from phonestatus.batch.xlsx import (
    BOLD_STYLE,
    MAX_CELL_CHARS,
    SheetWriter,
    StreamingWorkbook,
    column_letters,
    crc32_combine,
    xml_text,
)

# Text that needs escaping, spaces that must survive, and look-alikes of Excel's own escapes.
TRICKY_TEXT = [
    "张三",
    "a & b < c > d",
    "\"quoted\" 'single'",
    "  leading and trailing  ",
    "line one\nline two",
    "tab\there",
    "_x0041_ stays literal",
    "ends with _x00e9_",
    "=SUM(A1:A2)",
    "'13800138000",
    "emoji 📞",
]
ROWS: list[list[str | int | None]] = [
    ["text", "number", "empty", "last"],
    *[[text, index, None, f"row {index}"] for index, text in enumerate(TRICKY_TEXT)],
    ["", 0, "", "after empty cells"],
]


def write_sample(path: Path) -> None:
    with StreamingWorkbook(path) as workbook:
        sheet = workbook.add_sheet("数据 Data")
        sheet.freeze_rows(1)
        sheet.set_width(0, 30)
        sheet.append(ROWS[0], style=BOLD_STYLE)
        for row in ROWS[1:]:
            sheet.append(row)
        workbook.add_sheet("空 Empty")


# openpyxl 3.1.5 does not decode ST_Xstring escapes (_xHHHH_) in cell text, so
# it returns the escaped form that Excel and python-calamine decode.
OPENPYXL_UNDECODED = {
    "_x0041_ stays literal": "_x005F_x0041_ stays literal",
    "ends with _x00e9_": "ends with _x005F_x00e9_",
}


def expected_cell(value: str | int | None) -> str | int | None:
    if isinstance(value, str):
        return OPENPYXL_UNDECODED.get(value, value or None)
    return value


class TestColumnLetters:
    @pytest.mark.parametrize(
        ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"), (702, "AAA")]
    )
    def test_column_letters(self, index: int, letters: str) -> None:
        assert column_letters(index) == letters


class TestXmlText:
    def test_xml_text_plain_unchanged(self) -> None:
        assert xml_text("13800138000") == "13800138000"

    def test_xml_text_escapes_markup(self) -> None:
        assert xml_text("a&b<c>") == "a&amp;b&lt;c&gt;"

    def test_xml_text_encodes_control_characters(self) -> None:
        assert xml_text("a\x01b\x1fc") == "a_x0001_b_x001F_c"

    def test_xml_text_protects_literal_escape(self) -> None:
        assert xml_text("_x0041_") == "_x005F_x0041_"

    def test_xml_text_cuts_to_cell_limit(self) -> None:
        assert len(xml_text("9" * (MAX_CELL_CHARS + 10))) == MAX_CELL_CHARS


class TestStreamingWorkbook:
    def test_openpyxl_reads_every_cell(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"
        write_sample(path)

        workbook = openpyxl.load_workbook(path)
        sheet = workbook["数据 Data"]
        values = [list(row) for row in sheet.iter_rows(values_only=True)]

        assert workbook.sheetnames == ["数据 Data", "空 Empty"]
        assert len(values) == len(ROWS)
        for row_index, (got, want) in enumerate(zip(values, ROWS, strict=True)):
            for column, value in enumerate(want):
                assert got[column] == expected_cell(value), f"row {row_index + 1} col {column}"
        assert sheet.freeze_panes == "A2"
        assert sheet["A1"].font.b
        assert not sheet["A2"].font.b
        assert sheet.column_dimensions["A"].width == 30
        workbook.close()

    def test_calamine_reads_every_cell(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"
        write_sample(path)

        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        values = workbook.get_sheet_by_name("数据 Data").to_python()

        assert workbook.sheet_names == ["数据 Data", "空 Empty"]
        assert len(values) == len(ROWS)
        for row_index, (got, want) in enumerate(zip(values, ROWS, strict=True)):
            for column, value in enumerate(want):
                # calamine returns numbers as floats and empty cells as "".
                expected = "" if value is None else value
                assert got[column] == expected, f"row {row_index + 1} col {column}"

    def test_control_characters_read_back(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"
        with StreamingWorkbook(path) as workbook:
            workbook.add_sheet("s").append(["bell\x07here"])

        values = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)

        assert values.to_python() == [["bell\x07here"]]

    def test_wide_rows_past_column_z(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"
        row = [f"c{index}" for index in range(30)]
        with StreamingWorkbook(path) as workbook:
            workbook.add_sheet("wide").append(row)

        workbook_read = openpyxl.load_workbook(path, read_only=True)
        [values] = list(workbook_read["wide"].iter_rows(values_only=True))
        workbook_read.close()

        assert list(values) == row

    def test_duplicate_title_rejected(self, tmp_path: Path) -> None:
        with StreamingWorkbook(tmp_path / "out.xlsx") as workbook:
            workbook.add_sheet("s")
            with pytest.raises(ValueError, match="duplicate sheet title 's'"):
                workbook.add_sheet("s")

    def test_error_leaves_no_file(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"

        with pytest.raises(RuntimeError), StreamingWorkbook(path) as workbook:
            workbook.add_sheet("s").append(["x"])
            raise RuntimeError("stop")

        assert not path.exists()

    def test_package_parts(self, tmp_path: Path) -> None:
        path = tmp_path / "out.xlsx"
        write_sample(path)

        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            assert archive.testzip() is None

        assert names == {
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
        }


class TestCrc32Combine:
    @pytest.mark.parametrize("lengths", [(0, 5), (5, 0), (1000, 3_000_000), (2_500_000, 7)])
    def test_crc32_combine_matches_crc_of_joined_bytes(self, lengths: tuple[int, int]) -> None:
        first, second = (os.urandom(length) for length in lengths)

        combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))

        assert combined == zlib.crc32(first + second)


class TestSegments:
    def test_deflated_and_plain_segments_read_back(self, tmp_path: Path) -> None:
        """Rows from deflating writers between plain rows: one member that every reader takes."""
        path = tmp_path / "out.xlsx"
        with StreamingWorkbook(path) as workbook:
            sheet = workbook.add_sheet("s")
            sheet.append(["header"])
            for first, last in ((2, 40), (41, 90)):
                part = SheetWriter(
                    "s", tmp_path / f"part{first}.xml", start_row=first, deflate=True
                )
                for row in range(first, last + 1):
                    part.append([row, f"text {row} & more"])
                sheet.append_segment(part.detach())
            sheet.append(["after", 91])

        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
        values = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("s")
        rows = values.to_python()
        assert rows[0] == ["header", ""]
        assert rows[1:90] == [[float(row), f"text {row} & more"] for row in range(2, 91)]
        assert rows[90] == ["after", 91.0]
        assert sorted(item.name for item in tmp_path.iterdir()) == ["out.xlsx"]
