"""Turn a file's rows into stored row blocks and chunks of distinct numbers.

Each row is parsed with the number core. Invalid rows keep their reason and
are never queried. A number seen before is marked duplicate and joins no
chunk, so it is queried and billed once however often it appears.

Memory: the table of numbers seen so far is the only part that grows with
the file, 15 to 30 bytes per distinct number (see ``NumberTable``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from phonestatus.batch.models import ROWS_PER_BLOCK
from phonestatus.batch.numbertable import NumberTable
from phonestatus.batch.readers import BatchSource, SourceRow
from phonestatus.numbers import NumberParseError, parse_mobile

# zlib level 1: row text compresses about 4x at a fraction of level 6's CPU time.
COMPRESSION_LEVEL = 1


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A row as kept in a block: the source row plus the parse outcome."""

    row_number: int
    cells: tuple[str, ...]
    number: str | None
    duplicate: bool
    reason_code: str | None
    reason_zh: str | None

    def to_list(self) -> list[object]:
        return [
            self.row_number,
            list(self.cells),
            self.number,
            int(self.duplicate),
            self.reason_code,
            self.reason_zh,
        ]

    @classmethod
    def from_list(cls, values: list[Any]) -> StoredRow:
        row_number, cells, number, duplicate, reason_code, reason_zh = values
        return cls(row_number, tuple(cells), number, bool(duplicate), reason_code, reason_zh)


def encode_block(rows: list[StoredRow]) -> bytes:
    return encode_lists([row.to_list() for row in rows])


def encode_lists(rows: list[list[Any]]) -> bytes:
    """Encode rows given as ``StoredRow.to_list`` values (cells may be a tuple)."""
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode(), COMPRESSION_LEVEL)


def decode_block(payload: bytes) -> list[StoredRow]:
    return [StoredRow.from_list(values) for values in decode_lists(payload)]


def decode_lists(payload: bytes) -> list[list[Any]]:
    """Return a block's rows as the lists ``StoredRow.to_list`` made."""
    rows: list[list[Any]] = json.loads(zlib.decompress(payload))
    return rows


@dataclass(frozen=True, slots=True)
class ChunkNumber:
    """A distinct number of a job and the first row it appears on."""

    number: str
    row_number: int


def encode_chunk_numbers(numbers: list[ChunkNumber]) -> str:
    return "\n".join(f"{item.number} {item.row_number}" for item in numbers)


def decode_chunk_numbers(text: str) -> list[ChunkNumber]:
    items = []
    for line in text.split("\n"):
        number, row_number = line.split(" ")
        items.append(ChunkNumber(number, int(row_number)))
    return items


def decode_chunk_columns(text: str) -> tuple[list[str], list[int]]:
    """Return an encoded chunk's numbers and first row numbers as two lists, in order.

    ``decode_chunk_numbers`` without an object per number, for batch workers.
    """
    numbers: list[str] = []
    row_numbers: list[int] = []
    for line in text.split("\n"):
        number, _, row_number = line.partition(" ")
        numbers.append(number)
        row_numbers.append(int(row_number))
    return numbers, row_numbers


def chunk_number_keys(text: str) -> list[int]:
    """Return the numbers of an encoded chunk as integers, in order."""
    # Lines are "<number> <row number>": every other field is a number.
    return list(map(int, text.split()[::2]))


@dataclass
class IntakeBatch:
    """Blocks and chunks ready to insert: (block_no, row_count, payload) and (chunk_no, numbers)."""

    blocks: list[tuple[int, int, bytes]] = field(default_factory=list)
    chunks: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class IntakeCounts:
    total_rows: int = 0
    invalid_rows: int = 0
    duplicate_rows: int = 0
    distinct_numbers: int = 0
    source_width: int = 0
    block_count: int = 0
    chunk_count: int = 0


class Intake:
    """Classify rows one by one and cut them into blocks and chunks."""

    def __init__(self, source: BatchSource, *, chunk_size: int) -> None:
        self.source = source
        self.chunk_size = chunk_size
        self.counts = IntakeCounts(source_width=len(source.header or ()))
        # Sized for the file up front: growing rehashes every number seen so far.
        self._seen = NumberTable(NumberTable.capacity_for(source.expected_rows))
        # Rows and chunk lines in their stored form, so no object is built per row.
        self._rows: list[list[Any]] = []
        self._chunk: list[str] = []

    def batches(self, *, blocks_per_batch: int = 20) -> Iterator[IntakeBatch]:
        """Yield batches of encoded blocks and chunks until the source is exhausted."""
        batch = IntakeBatch()
        for row in self.source.rows:
            self._add(self._classify(row), batch)
            if len(batch.blocks) >= blocks_per_batch:
                yield batch
                batch = IntakeBatch()
        self._flush_block(batch)
        self._flush_chunk(batch)
        if batch.blocks or batch.chunks:
            yield batch

    def classify(self, row: SourceRow) -> StoredRow:
        return StoredRow.from_list(self._classify(row))

    def _classify(self, row: SourceRow) -> list[Any]:
        """Return the row as ``StoredRow.to_list`` values (the cells stay a tuple)."""
        try:
            number = parse_mobile(row.value).digits
        except NumberParseError as exc:
            return [row.row_number, row.cells, None, 0, exc.reason.value, exc.message_zh]

        duplicate = not self._seen.add(int(number))
        return [row.row_number, row.cells, number, int(duplicate), None, None]

    def _add(self, values: list[Any], batch: IntakeBatch) -> None:
        row_number, cells, number, duplicate = values[:4]
        counts = self.counts
        counts.total_rows += 1
        if len(cells) > counts.source_width:
            counts.source_width = len(cells)
        if number is None:
            counts.invalid_rows += 1
        elif duplicate:
            counts.duplicate_rows += 1
        else:
            counts.distinct_numbers += 1
            self._chunk.append(f"{number} {row_number}")
            if len(self._chunk) >= self.chunk_size:
                self._flush_chunk(batch)

        self._rows.append(values)
        if len(self._rows) >= ROWS_PER_BLOCK:
            self._flush_block(batch)

    def _flush_block(self, batch: IntakeBatch) -> None:
        if not self._rows:
            return
        batch.blocks.append((self.counts.block_count, len(self._rows), encode_lists(self._rows)))
        self.counts.block_count += 1
        self._rows = []

    def _flush_chunk(self, batch: IntakeBatch) -> None:
        if not self._chunk:
            return
        # The lines encode_chunk_numbers writes: "<number> <row number>".
        batch.chunks.append((self.counts.chunk_count, "\n".join(self._chunk)))
        self.counts.chunk_count += 1
        self._chunk = []
