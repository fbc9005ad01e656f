from __future__ import annotations

import random

import pytest

from phonestatus.batch.numbertable import NumberTable


class TestNumberTable:
    def test_add_reports_new_keys(self) -> None:
        table = NumberTable()

        assert table.add(13800138000, 3)
        assert not table.add(13800138000, 5)
        assert table.get(13800138000) == 3
        assert len(table) == 1

    def test_get_missing_key(self) -> None:
        table = NumberTable()
        table.add(13800138000)

        assert table.get(13800138001) is None
        assert 13800138001 not in table
        assert 13800138000 in table

    def test_growth_keeps_every_entry(self) -> None:
        rng = random.Random(3)
        keys = {rng.randrange(10**10, 2 * 10**10) for _ in range(20_000)}
        table = NumberTable()

        for key in keys:
            table.add(key, key % 65536)

        assert len(table) == len(keys)
        assert all(table.get(key) == key % 65536 for key in keys)

    def test_consecutive_keys(self) -> None:
        table = NumberTable()

        for key in range(13800000000, 13800010000):
            table.add(key)

        assert len(table) == 10_000
        assert all(key in table for key in range(13800000000, 13800010000))

    @pytest.mark.parametrize("key", [0, -1])
    def test_add_rejects_non_positive_key(self, key: int) -> None:
        with pytest.raises(ValueError, match="positive"):
            NumberTable().add(key)

    def test_add_rejects_large_value(self) -> None:
        with pytest.raises(ValueError, match="65535"):
            NumberTable().add(13800138000, 65536)

    def test_sized_table_never_grows(self) -> None:
        count = 20_000
        table = NumberTable(NumberTable.capacity_for(count))
        slots = len(table._keys)

        for key in range(13900000000, 13900000000 + count):
            table.add(key)

        assert len(table._keys) == slots
        assert len(table) == count


class TestAddMany:
    def test_add_many_matches_add(self) -> None:
        rng = random.Random(5)
        keys = [rng.randrange(10**10, 2 * 10**10) for _ in range(30_000)]
        keys += keys[:500]  # repeats keep their first value
        values = [index % 70 for index in range(len(keys))]
        one_by_one, at_once = NumberTable(), NumberTable()

        added = sum(one_by_one.add(key, value) for key, value in zip(keys, values, strict=True))

        assert at_once.add_many(keys, values) == added
        assert len(at_once) == len(one_by_one)
        for key in keys:
            assert at_once.get(key) == one_by_one.get(key)

    def test_add_many_rejects_bad_input(self) -> None:
        table = NumberTable()

        with pytest.raises(ValueError, match="positive, got 0"):
            table.add_many([13800138000, 0], [1, 2])
        with pytest.raises(ValueError, match="got 65536"):
            table.add_many([13800138000], [65536])
        with pytest.raises(ValueError, match="2 keys but 1 values"):
            table.add_many([13800138000, 13800138001], [1])
        assert len(table) == 0
