"""A compact hash map from phone numbers (as ints) to small ints.

A Python ``set`` or ``dict`` of a million 11-digit ints costs about 64-100
bytes per entry, because every int is an object. This table keeps keys in an
``array('q')`` and values in an ``array('H')`` with open addressing and
linear probing: 10 bytes per slot and 1.5 to 3 slots per entry, so 15 to 30
bytes per entry, for a few microseconds per operation in pure Python. Keys must be positive, which every
11-digit mobile number is; 0 marks an empty slot.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

INITIAL_CAPACITY = 1 << 12
# Grow when more than two thirds of the slots are used (the bound CPython's dict
# uses): probe sequences stay short, and 2.35 million numbers fit 4 Mi slots
# (42 MB) where a bound of one half needed 8 Mi.
MAX_LOAD_NUMERATOR = 2
MAX_LOAD_DENOMINATOR = 3
# Fibonacci hashing multiplier (2**64 / golden ratio), spreads consecutive numbers apart.
HASH_MULTIPLIER = 0x9E3779B97F4A7C15
MASK_64 = (1 << 64) - 1
MAX_VALUE = 0xFFFF


class NumberTable:
    """The map; ``capacity`` is the number of slots to start with (rounded up to a power of 2)."""

    def __init__(self, capacity: int = INITIAL_CAPACITY) -> None:
        size = INITIAL_CAPACITY
        while size < capacity:
            size <<= 1
        self._allocate(size)
        self._count = 0

    def _allocate(self, size: int) -> None:
        # Repeating a one-item array builds no temporary bytes object of the full size.
        self._keys = array("q", [0]) * size
        self._values = array("H", [0]) * size
        self._mask = size - 1
        self._shift = 64 - size.bit_length() + 1

    @staticmethod
    def capacity_for(entries: int) -> int:
        """Return the slots that hold ``entries`` without growing."""
        return entries * MAX_LOAD_DENOMINATOR // MAX_LOAD_NUMERATOR + 1

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        return self._find(key) >= 0

    def get(self, key: int) -> int | None:
        slot = self._find(key)
        return None if slot < 0 else self._values[slot]

    def add(self, key: int, value: int = 0) -> bool:
        """Store ``key`` with ``value`` unless present; return whether it was added."""
        if key <= 0:
            raise ValueError(f"keys must be positive, got {key}")
        if not 0 <= value <= MAX_VALUE:
            raise ValueError(f"values must be in 0..{MAX_VALUE}, got {value}")
        keys = self._keys
        mask = self._mask
        slot = ((key * HASH_MULTIPLIER) & MASK_64) >> self._shift
        while True:
            found = keys[slot]
            if found == key:
                return False
            if found == 0:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._values[slot] = value
        self._count += 1
        if self._count * MAX_LOAD_DENOMINATOR > len(keys) * MAX_LOAD_NUMERATOR:
            self._grow()
        return True

    def add_many(self, keys: Sequence[int], values: Sequence[int]) -> int:
        """``add`` each key with its value; return how many were added.

        One loop with the table's state in locals. Building a job's result
        index adds a million numbers, and ``add`` per number cost about 0.4 s more.
        """
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        if not keys:
            return 0
        if min(keys) <= 0:
            raise ValueError(f"keys must be positive, got {min(keys)}")
        lowest, highest = min(values), max(values)
        if lowest < 0 or highest > MAX_VALUE:
            bad = lowest if lowest < 0 else highest
            raise ValueError(f"values must be in 0..{MAX_VALUE}, got {bad}")
        # Room for every key first, so the loop never grows the table.
        while (self._count + len(keys)) * MAX_LOAD_DENOMINATOR > len(
            self._keys
        ) * MAX_LOAD_NUMERATOR:
            self._grow()
        table, table_values, mask, shift = self._keys, self._values, self._mask, self._shift
        added = 0
        for key, value in zip(keys, values, strict=True):
            slot = ((key * HASH_MULTIPLIER) & MASK_64) >> shift
            while True:
                found = table[slot]
                if found == 0:
                    table[slot] = key
                    table_values[slot] = value
                    added += 1
                    break
                if found == key:
                    break
                slot = (slot + 1) & mask
        self._count += added
        return added

    def _find(self, key: int) -> int:
        keys = self._keys
        mask = self._mask
        slot = ((key * HASH_MULTIPLIER) & MASK_64) >> self._shift
        while True:
            found = keys[slot]
            if found == key:
                return slot
            if found == 0:
                return -1
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        self._allocate(len(old_keys) * 2)
        # ``add`` inlined: the keys are known valid and distinct, and growing
        # re-adds about as many entries as the table ever receives.
        keys, values, mask, shift = self._keys, self._values, self._mask, self._shift
        for key, value in zip(old_keys, old_values, strict=True):
            if key:
                slot = ((key * HASH_MULTIPLIER) & MASK_64) >> shift
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value
