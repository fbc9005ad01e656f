from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import openpyxl
import pytest

from phonestatus.batch.errors import (
    ArchiveTooLarge,
    EmptyFile,
    FileTooLarge,
    NumberColumnNotFound,
    TooManyRows,
    UndecodableFile,
    UnsupportedFormat,
)
from phonestatus.batch.readers import (
    FileFormat,
    ReaderLimits,
    detect_encoding,
    detect_format,
    open_source,
    release_free_memory,
)
from phonestatus.batch.xlsx import StreamingWorkbook

LIMITS = ReaderLimits(
    max_file_bytes=10 * 1024 * 1024, max_rows=1000, max_xlsx_uncompressed_bytes=50 * 1024 * 1024
)
CSV_TEXT = "姓名,手机号码,备注\n张三,13800138000,老客户\n李四,13912345678,\n"


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def values(path: Path, **kwargs: object) -> list[str]:
    source = open_source(path, limits=LIMITS, **kwargs)  # type: ignore[arg-type]
    return [row.value for row in source.rows]


def write_xlsx(tmp_path: Path, rows: list[list[object]], name: str = "numbers.xlsx") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("a.txt", FileFormat.TXT),
            ("A.CSV", FileFormat.CSV),
            ("list.tsv", FileFormat.CSV),
            ("客户.xlsx", FileFormat.XLSX),
        ],
    )
    def test_detect_format_by_extension(self, name: str, expected: FileFormat) -> None:
        assert detect_format(name) is expected

    @pytest.mark.parametrize("name", ["a.xls", "a.pdf", "noext"])
    def test_detect_format_unsupported(self, name: str) -> None:
        with pytest.raises(UnsupportedFormat, match=name):
            detect_format(name)


class TestDetectEncoding:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (codecs.BOM_UTF8 + CSV_TEXT.encode(), "utf-8-sig"),
            (CSV_TEXT.encode("utf-8"), "utf-8"),
            (CSV_TEXT.encode("gbk"), "gb18030"),
            (CSV_TEXT.encode("gb18030"), "gb18030"),
            (CSV_TEXT.encode("utf-16"), "utf-16"),
        ],
    )
    def test_detect_encoding_per_source(self, tmp_path: Path, data: bytes, expected: str) -> None:
        path = write_bytes(tmp_path, "a.csv", data)

        assert detect_encoding(path, "a.csv") == expected

    def test_detect_encoding_utf8_never_read_as_gbk(self, tmp_path: Path) -> None:
        # These UTF-8 bytes are also valid GBK; decoding GBK first would garble them silently.
        text = "手机号码\n13800138000\n"
        path = write_bytes(tmp_path, "a.csv", text.encode("utf-8"))

        source = open_source(path, limits=LIMITS)

        assert source.header == ("手机号码",)

    def test_detect_encoding_invalid_bytes(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.csv", b"\x81\x20\xff\xfe\x80")

        with pytest.raises(UndecodableFile, match=r"a\.csv"):
            detect_encoding(path, "a.csv")

    def test_detect_encoding_multibyte_split_across_blocks(self, tmp_path: Path) -> None:
        text = "号" * (1024 * 1024)  # 3 MiB of UTF-8: characters straddle read blocks
        path = write_bytes(tmp_path, "a.txt", text.encode("utf-8"))

        assert detect_encoding(path, "a.txt") == "utf-8"


class TestOpenSourceCsv:
    @pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
    def test_open_source_finds_header_column(self, tmp_path: Path, encoding: str) -> None:
        path = write_bytes(tmp_path, "a.csv", CSV_TEXT.encode(encoding))

        source = open_source(path, limits=LIMITS)
        rows = list(source.rows)

        assert source.header == ("姓名", "手机号码", "备注")
        assert source.column_index == 1
        assert [row.value for row in rows] == ["13800138000", "13912345678"]
        assert [row.row_number for row in rows] == [2, 3]
        assert rows[0].cells == ("张三", "13800138000", "老客户")

    @pytest.mark.parametrize(
        "title", ["phone", "Mobile", "手机号", "号码", "Phone Number", "客户电话"]
    )
    def test_open_source_header_names(self, tmp_path: Path, title: str) -> None:
        path = write_bytes(tmp_path, "a.csv", f"name,{title}\nx,13800138000\n".encode())

        assert values(path) == ["13800138000"]

    def test_open_source_protected_blank_row(self, tmp_path: Path) -> None:
        # An apostrophe in front of a tab protects the tab, so the row is blank.
        text = "phone,note\n13800138000,x\n,\n'\t,\n'x,\n13912345678,'=y\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        source = open_source(path, limits=LIMITS)
        rows = list(source.rows)

        assert [row.row_number for row in rows] == [2, 5, 6]
        assert rows[1].cells == ("'x", "")
        assert rows[2].cells == ("13912345678", "=y")

    def test_open_source_user_column_by_name(self, tmp_path: Path) -> None:
        text = "主叫,被叫\n13800138000,13912345678\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        assert values(path, column="被叫") == ["13912345678"]

    def test_open_source_user_column_by_position(self, tmp_path: Path) -> None:
        text = "主叫,被叫\n13800138000,13912345678\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        assert values(path, column="2") == ["13912345678"]

    def test_open_source_unknown_user_column(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.csv", CSV_TEXT.encode())

        with pytest.raises(NumberColumnNotFound, match="'电话'"):
            open_source(path, limits=LIMITS, column="电话")

    def test_open_source_no_header_finds_number_column(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.csv", "张三,13800138000\n李四,13912345678\n".encode())

        source = open_source(path, limits=LIMITS)
        rows = list(source.rows)

        assert source.header is None
        assert [row.value for row in rows] == ["13800138000", "13912345678"]
        assert rows[0].row_number == 1

    def test_open_source_no_number_column(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.csv", "姓名,城市\n张三,杭州\n".encode())

        with pytest.raises(NumberColumnNotFound, match="姓名"):
            open_source(path, limits=LIMITS)

    @pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
    def test_open_source_other_delimiters(self, tmp_path: Path, delimiter: str) -> None:
        text = f"name{delimiter}phone\nx{delimiter}13800138000\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        assert values(path) == ["13800138000"]

    def test_open_source_keeps_excel_damage_for_the_parser(self, tmp_path: Path) -> None:
        text = "phone\n13800138000.0\n1.38001E+10\n'13800138000\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        assert values(path) == ["13800138000.0", "1.38001E+10", "'13800138000"]

    def test_open_source_strips_our_formula_prefix(self, tmp_path: Path) -> None:
        text = "phone,备注\n'+86 138 0013 8000,'=1+1\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        rows = list(open_source(path, limits=LIMITS).rows)

        assert rows[0].value == "+86 138 0013 8000"
        assert rows[0].cells == ("+86 138 0013 8000", "=1+1")

    def test_open_source_skips_blank_rows(self, tmp_path: Path) -> None:
        text = "phone\n13800138000\n,\n\n13912345678\n"
        path = write_bytes(tmp_path, "a.csv", text.encode())

        rows = list(open_source(path, limits=LIMITS).rows)

        assert [row.row_number for row in rows] == [2, 5]

    def test_open_source_short_row_has_empty_value(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.csv", "name,phone\n张三\n".encode())

        assert values(path) == [""]


class TestOpenSourceTxt:
    def test_open_source_one_number_per_line(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.txt", b"13800138000\r\n139 1234 5678\r\n\r\n")

        rows = list(open_source(path, limits=LIMITS).rows)

        assert [row.value for row in rows] == ["13800138000", "139 1234 5678"]
        assert [row.row_number for row in rows] == [1, 2]

    def test_open_source_txt_title_line(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.txt", "手机号\n13800138000\n".encode("gbk"))

        source = open_source(path, limits=LIMITS)

        assert source.header == ("手机号",)
        assert [row.value for row in source.rows] == ["13800138000"]

    def test_open_source_empty_file(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.txt", b"")

        with pytest.raises(EmptyFile):
            open_source(path, limits=LIMITS)


class TestOpenSourceXlsx:
    def test_open_source_numeric_cells_keep_all_digits(self, tmp_path: Path) -> None:
        path = write_xlsx(
            tmp_path,
            [
                ["姓名", "手机号"],
                ["张三", 13800138000],
                ["李四", 13912345678.0],
                ["王五", "13700000000"],
            ],
        )

        source = open_source(path, limits=LIMITS)
        rows = list(source.rows)

        assert source.header == ("姓名", "手机号")
        assert [row.value for row in rows] == ["13800138000", "13912345678", "13700000000"]
        assert [row.row_number for row in rows] == [2, 3, 4]

    def test_open_source_fractional_numeric_cell_kept_as_text(self, tmp_path: Path) -> None:
        path = write_xlsx(tmp_path, [["phone"], [1380013800.5]])

        assert values(path) == ["1380013800.5"]

    def test_open_source_text_cells_with_damage(self, tmp_path: Path) -> None:
        path = write_xlsx(tmp_path, [["phone"], ["1.38001E+10"], ["'=13800138000"]])

        assert values(path) == ["1.38001E+10", "=13800138000"]

    def test_open_source_reads_streamed_workbook(self, tmp_path: Path) -> None:
        path = tmp_path / "streamed.xlsx"
        with StreamingWorkbook(path) as workbook:
            sheet = workbook.add_sheet("Sheet1")
            sheet.append(["客户", "手机号"])
            sheet.append(["张三", 13800138000])
            sheet.append(["李四", "'+8613912345678"])

        source = open_source(path, limits=LIMITS)
        rows = list(source.rows)

        assert source.header == ("客户", "手机号")
        assert [row.value for row in rows] == ["13800138000", "+8613912345678"]
        assert [row.cells for row in rows] == [
            ("张三", "13800138000"),
            ("李四", "+8613912345678"),
        ]

    def test_release_free_memory_runs(self) -> None:
        release_free_memory()

    def test_open_source_rejects_zip_bomb(self, tmp_path: Path) -> None:
        path = tmp_path / "bomb.xlsx"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))

        with pytest.raises(ArchiveTooLarge):
            open_source(path, limits=LIMITS)

    def test_open_source_rejects_lying_zip_sizes(self, tmp_path: Path) -> None:
        limits = ReaderLimits(
            max_file_bytes=LIMITS.max_file_bytes, max_rows=10, max_xlsx_uncompressed_bytes=1000
        )
        path = tmp_path / "liar.xlsx"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a.xml", b"\0" * 600)
            archive.writestr("b.xml", b"\0" * 600)

        with pytest.raises(ArchiveTooLarge):
            open_source(path, limits=limits)

    def test_open_source_not_a_zip(self, tmp_path: Path) -> None:
        path = write_bytes(tmp_path, "a.xlsx", b"phone\n13800138000\n")

        with pytest.raises(Exception, match="not a valid XLSX"):
            open_source(path, limits=LIMITS)


class TestLimits:
    def test_open_source_file_too_large(self, tmp_path: Path) -> None:
        limits = ReaderLimits(max_file_bytes=10, max_rows=10, max_xlsx_uncompressed_bytes=10)
        path = write_bytes(tmp_path, "a.txt", b"13800138000\n")

        with pytest.raises(FileTooLarge, match="12 bytes"):
            open_source(path, limits=limits)

    def test_open_source_too_many_rows(self, tmp_path: Path) -> None:
        limits = ReaderLimits(max_file_bytes=1000, max_rows=2, max_xlsx_uncompressed_bytes=10)
        path = write_bytes(tmp_path, "a.txt", b"13800138000\n13800138001\n13800138002\n")
        rows = open_source(path, limits=limits).rows

        with pytest.raises(TooManyRows, match="more than 2 rows"):
            list(rows)


class TestExpectedRows:
    """The row estimate that sizes the duplicate table; wrong only costs time or memory."""

    def test_csv_estimate_near_line_count(self, tmp_path: Path) -> None:
        lines = ["手机号码"] + [f"1380013{index:04d}" for index in range(900)]
        path = write_bytes(tmp_path, "a.csv", "\n".join(lines).encode() + b"\n")

        source = open_source(path, limits=LIMITS)

        assert 850 <= source.expected_rows <= 950

    def test_estimate_capped_by_row_limit(self, tmp_path: Path) -> None:
        limits = ReaderLimits(max_file_bytes=10**6, max_rows=5, max_xlsx_uncompressed_bytes=10)
        path = write_bytes(tmp_path, "a.txt", b"13800138000\n" * 50)

        assert open_source(path, limits=limits).expected_rows == 5

    def test_xlsx_counts_sheet_rows(self, tmp_path: Path) -> None:
        path = write_xlsx(tmp_path, [["手机号码"], *[[f"1380013{i:04d}"] for i in range(30)]])

        assert open_source(path, limits=LIMITS).expected_rows == 31
