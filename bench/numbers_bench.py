"""Benchmark the number core against phonenumbers on the same mixed inputs.

Both sides take raw user input to carrier and province: phonestatus runs
``parse_mobile`` (which includes the segment lookup) and ``attribute``;
phonenumbers runs ``parse(text, "CN")``, ``carrier.name_for_number`` and
``geocoder.description_for_number`` in Chinese. The script prints each side's
throughput, the ratio, and how often the two agree on carrier and province
where phonenumbers returns an answer.

Usage: python bench/numbers_bench.py [--count N] [--seed S] [--by-form]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
from collections import Counter

import phonenumbers
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder as pn_geocoder

from phonestatus.numbers import (
    SEGMENT_DATA_VERSION,
    Carrier,
    NumberKind,
    NumberParseError,
    attribute,
    parse_mobile,
)
from phonestatus.numbers.attribution import load_index, split_region
from phonestatus.numbers.segments import SEGMENT_TABLE

CARRIER_BY_PHONENUMBERS_NAME = {
    "China Mobile": Carrier.CMCC,
    "China Unicom": Carrier.CUCC,
    "China Telecom": Carrier.CTCC,
    "China Broadnet": Carrier.CBN,
}

CHUNK_INPUTS = 1_000

# Share of each input form, in percent. Canonical digits dominate API traffic,
# and the other forms are what batch files and console input contain.
INPUT_MIX: dict[str, int] = {
    "canonical": 55,
    "country_code": 10,
    "separated": 12,
    "full_width": 4,
    "invisible_or_nbsp": 3,
    "spreadsheet": 4,
    "trunk_zero": 2,
    "landline": 4,
    "malformed": 6,
}


# (national digits, carrier, province), or for phonenumbers (national digits,
# carrier, region description). A plain tuple keeps harness overhead small
# next to the work being measured.
Answer = tuple[str | None, Carrier | None, str | None]
NO_ANSWER: Answer = (None, None, None)


def random_mobile(rng: random.Random, prefixes: list[str]) -> str:
    prefix = rng.choice(prefixes)
    return prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def make_input(form: str, rng: random.Random, prefixes: list[str]) -> str:
    number = random_mobile(rng, prefixes)
    grouped = f"{number[:3]}{{0}}{number[3:7]}{{0}}{number[7:]}"
    if form == "canonical":
        return number
    if form == "country_code":
        return rng.choice(["+86", "86", "0086", "+86 ", "(+86)"]) + number
    if form == "separated":
        return grouped.format(rng.choice([" ", "-", "."]))
    if form == "full_width":
        return full_width("+86 " + number) if rng.random() < 0.5 else full_width(number)
    if form == "invisible_or_nbsp":
        return rng.choice(["\u200b" + number, grouped.format("\u00a0"), number + "\t"])
    if form == "spreadsheet":
        return rng.choice([number + ".0", "'" + number, '="' + number + '"'])
    if form == "trunk_zero":
        return "0" + number
    if form == "landline":
        area = rng.choice(["010", "021", "0571", "0930", "020"])
        return f"{area}-{rng.randrange(10_000_000, 99_999_999)}"
    # malformed: too short, too long, letters, scientific notation.
    return rng.choice([number[:-1], number + "1", number[:5] + "O" + number[6:], "1.38001E+10"])


def make_inputs(count: int, seed: int, only_form: str | None = None) -> list[str]:
    """Return ``count`` inputs drawn from INPUT_MIX, or all of ``only_form``."""
    rng = random.Random(seed)
    prefixes = sorted(
        s.prefix for s in SEGMENT_TABLE.segments if s.kind is not NumberKind.UNALLOCATED
    )
    if only_form is None:
        forms = rng.choices(list(INPUT_MIX), weights=list(INPUT_MIX.values()), k=count)
    else:
        forms = [only_form] * count
    return [make_input(form, rng, prefixes) for form in forms]


def phonestatus_answer(text: str) -> Answer:
    try:
        number = parse_mobile(text)
    except NumberParseError:
        return NO_ANSWER
    return (number.digits, number.segment.carrier, attribute(number.digits).province)


def phonenumbers_answer(text: str) -> Answer:
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return NO_ANSWER
    name = pn_carrier.name_for_number(parsed, "en")
    description = pn_geocoder.description_for_number(parsed, "zh")
    # The description (浙江省杭州市) is split into a province after timing, in count_agreement.
    return (str(parsed.national_number), CARRIER_BY_PHONENUMBERS_NAME.get(name), description)


def count_agreement(ours: list[Answer], theirs: list[Answer]) -> Counter[str]:
    """Count carrier and province agreement on inputs phonenumbers reads as a mobile number."""
    agreement = Counter[str]()
    for (digits, carrier, province), (other_digits, other_carrier, other_region) in zip(
        ours, theirs, strict=True
    ):
        if other_carrier is not None:
            agreement["carrier_compared"] += 1
            agreement["carrier_same"] += carrier is other_carrier
            agreement["digits_differ"] += digits != other_digits
        is_mobile = other_digits is not None and len(other_digits) == 11 and other_digits[0] == "1"
        # phonenumbers falls back to the country name when it has no region.
        if other_region and other_region != "中国" and is_mobile:
            agreement["province_compared"] += 1
            agreement["province_same"] += province == split_region(other_region).province
        if carrier is not None and other_carrier is None:
            agreement["only_phonestatus_carrier"] += 1
    return agreement


def run_interleaved(inputs: list[str]) -> tuple[float, float, Counter[str]]:
    """Time both sides chunk by chunk, alternating, so a change in machine load hits both alike.

    Times are CPU seconds of this process (``time.process_time``), so other
    processes sharing the cores do not count against either side. Answers
    are compared per chunk and dropped, so a growing heap of results does
    not make the garbage collector slower for whichever side runs later.
    """
    ours_seconds = theirs_seconds = 0.0
    agreement = Counter[str]()
    for start in range(0, len(inputs), CHUNK_INPUTS):
        chunk = inputs[start : start + CHUNK_INPUTS]

        started = time.process_time()
        ours = [phonestatus_answer(text) for text in chunk]
        ours_seconds += time.process_time() - started

        started = time.process_time()
        theirs = [phonenumbers_answer(text) for text in chunk]
        theirs_seconds += time.process_time() - started

        agreement.update(count_agreement(ours, theirs))
    return ours_seconds, theirs_seconds, agreement


def print_by_form(count: int, seed: int) -> None:
    for form in INPUT_MIX:
        ours_seconds, theirs_seconds, _ = run_interleaved(make_inputs(count, seed, form))
        print(
            f"  {form:18} phonestatus {ours_seconds / count * 1e6:6.2f} us/input, "
            f"phonenumbers {theirs_seconds / count * 1e6:7.2f} us/input, "
            f"ratio {theirs_seconds / ours_seconds:5.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="number of inputs")
    parser.add_argument("--seed", type=int, default=20261204, help="random seed for the inputs")
    parser.add_argument(
        "--by-form",
        action="store_true",
        help="also print the ratio for each input form, on --count / 10 inputs of each",
    )
    args = parser.parse_args()

    inputs = make_inputs(args.count, args.seed)
    # Both sides load their data before timing starts.
    load_index()
    phonenumbers_answer("13800138000")
    phonestatus_answer("13800138000")

    # The inputs and both libraries' data stay alive for the whole run, so
    # gc.freeze() moves them out of the garbage collector's scans.
    gc.collect()
    gc.freeze()
    ours_seconds, theirs_seconds, agreement = run_interleaved(inputs)

    count = len(inputs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"python {platform.python_version()}, phonenumbers {phonenumbers.__version__}, "
        f"segment data {SEGMENT_DATA_VERSION}"
    )
    print(f"inputs: {count:,} (seed {args.seed}, mix {INPUT_MIX})")
    print(f"phonestatus:  {ours_seconds:8.2f} CPU s  {count / ours_seconds:12,.0f} inputs/s")
    print(f"phonenumbers: {theirs_seconds:8.2f} CPU s  {count / theirs_seconds:12,.0f} inputs/s")
    print(f"ratio: {theirs_seconds / ours_seconds:.1f}x")
    for field in ("carrier", "province"):
        compared = agreement[f"{field}_compared"]
        same = agreement[f"{field}_same"]
        print(
            f"{field} agreement where phonenumbers answers: {same:,}/{compared:,} "
            f"({100 * same / max(compared, 1):.3f}%)"
        )
    print(f"digits differ where phonenumbers names a carrier: {agreement['digits_differ']:,}")
    print(f"carrier from phonestatus only: {agreement['only_phonestatus_carrier']:,}")
    if args.by_form:
        print(f"by input form, {args.count // 10:,} inputs each:")
        print_by_form(args.count // 10, args.seed)


if __name__ == "__main__":
    main()
