from __future__ import annotations

from pathlib import Path

import pytest

from phonestatus.batch.intake import (
    ChunkNumber,
    Intake,
    StoredRow,
    decode_block,
    decode_chunk_columns,
    decode_chunk_numbers,
    encode_block,
    encode_chunk_numbers,
)
from phonestatus.batch.readers import ReaderLimits, SourceRow, open_source

LIMITS = ReaderLimits(max_file_bytes=10**7, max_rows=10**5, max_xlsx_uncompressed_bytes=10**8)


def intake_for(tmp_path: Path, lines: list[str], chunk_size: int = 2) -> Intake:
    path = tmp_path / "a.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Intake(open_source(path, limits=LIMITS), chunk_size=chunk_size)


class TestClassify:
    @pytest.mark.parametrize(
        "value",
        [
            "13800138000",
            "13800138000.0",
            "'13800138000",
            '="13800138000"',
            "+86 138-0013-8000",
            "１３８００１３８０００",
            "(+86) 138 0013 8000",
        ],
    )
    def test_classify_spreadsheet_forms(self, tmp_path: Path, value: str) -> None:
        intake = intake_for(tmp_path, ["x"])

        row = intake.classify(SourceRow(5, (value,), value))

        assert row.number == "13800138000"
        assert row.reason_code is None

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("1.38001E+10", "PRECISION_LOST"),
            ("", "EMPTY"),
            ("1380013800", "TOO_SHORT"),
            ("010-12345678", "NOT_MOBILE"),
        ],
    )
    def test_classify_invalid_with_reason(self, tmp_path: Path, value: str, reason: str) -> None:
        intake = intake_for(tmp_path, ["x"])

        row = intake.classify(SourceRow(7, (value,), value))

        assert row.number is None
        assert row.reason_code == reason
        assert row.reason_zh

    def test_classify_marks_second_sighting_duplicate(self, tmp_path: Path) -> None:
        intake = intake_for(tmp_path, ["x"])

        first = intake.classify(SourceRow(1, ("13800138000",), "13800138000"))
        second = intake.classify(SourceRow(2, ("138 0013 8000",), "138 0013 8000"))

        assert not first.duplicate
        assert second.duplicate


class TestBatches:
    def test_batches_chunk_distinct_numbers_only(self, tmp_path: Path) -> None:
        lines = ["13800138000", "13912345678", "13800138000", "bad", "13012345678"]
        intake = intake_for(tmp_path, lines, chunk_size=2)

        batches = list(intake.batches())

        chunks = [chunk for batch in batches for chunk in batch.chunks]
        numbers = [item.number for _, text in chunks for item in decode_chunk_numbers(text)]
        assert numbers == ["13800138000", "13912345678", "13012345678"]
        assert [chunk_no for chunk_no, _ in chunks] == [0, 1]
        assert intake.counts.total_rows == 5
        assert intake.counts.duplicate_rows == 1
        assert intake.counts.invalid_rows == 1
        assert intake.counts.distinct_numbers == 3

    def test_batches_blocks_keep_file_order(self, tmp_path: Path) -> None:
        lines = [f"139{index:08d}" for index in range(2500)]
        intake = intake_for(tmp_path, lines, chunk_size=500)

        blocks = [block for batch in intake.batches() for block in batch.blocks]

        assert [block_no for block_no, _, _ in blocks] == [0, 1, 2]
        assert [count for _, count, _ in blocks] == [1000, 1000, 500]
        rows = [row for _, _, payload in blocks for row in decode_block(payload)]
        assert [row.row_number for row in rows] == list(range(1, 2501))


class TestEncoding:
    def test_block_round_trip(self) -> None:
        rows = [
            StoredRow(2, ("张三", "13800138000"), "13800138000", False, None, None),
            StoredRow(3, ("李四", "x"), None, False, "NOT_A_NUMBER", "号码“x”无效"),
        ]

        assert decode_block(encode_block(rows)) == rows

    def test_chunk_numbers_round_trip(self) -> None:
        numbers = [ChunkNumber("13800138000", 2), ChunkNumber("13912345678", 1000000)]

        assert decode_chunk_numbers(encode_chunk_numbers(numbers)) == numbers

    def test_chunk_columns_match_chunk_numbers(self) -> None:
        numbers = [ChunkNumber("13800138000", 2), ChunkNumber("13912345678", 1000000)]

        columns = decode_chunk_columns(encode_chunk_numbers(numbers))

        assert columns == (["13800138000", "13912345678"], [2, 1000000])
