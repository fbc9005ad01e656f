"""Attribution (归属地): the province and city where a mobile number's 7-digit block was issued.

The source is libphonenumber's Chinese-language geocoder data as shipped by
the ``phonenumbers`` package, which is already a dependency and is updated
with each of its releases. Its prefixes for mainland mobile numbers are 3 to
7 digits long. On first use they are expanded into one array entry per
7-digit block (1,000,000 entries of 2 bytes, since every mobile number starts
with 1), so a lookup is an integer conversion and two indexing operations.

A block the data does not cover (most of 16x, 19x and 14x in phonenumbers
9.0) yields ``Attribution(None, None)``.

Building the index means importing phonenumbers' geodata: about 0.6 s and
80 MB for every language and country. So the built index ships as
``data/attribution.bin`` (about 2 MB of blocks, compressed), stamped with the
phonenumbers version it came from. A process loads that file while the
installed phonenumbers is the same version, and builds from the geodata
otherwise. ``rebuild_index_file`` writes the file again after an upgrade.
"""

from __future__ import annotations

import gc
import json
import sys
import zlib
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

BLOCK_DIGITS = 7
INDEX_FILE = Path(__file__).with_name("data") / "attribution.bin"
_BLOCK_COUNT = 10 ** (BLOCK_DIGITS - 1)
_NUMBER_DIGITS = 11
_COUNTRY_CODE = "86"
# Second digits of mobile numbers. The data's other 1x prefix is Beijing's landline area code 10.
_MOBILE_SECOND_DIGITS = frozenset("3456789")

# Provinces whose data entries carry no 省 suffix: the four municipalities,
# whose city is the province itself, and the five autonomous regions, which
# the data writes either in short form or with their full name.
MUNICIPALITIES = ("北京", "上海", "天津", "重庆")
AUTONOMOUS_REGIONS = {
    "内蒙古": ("内蒙古自治区",),
    "广西": ("广西壮族自治区",),
    "宁夏": ("宁夏回族自治区",),
    "新疆": ("新疆维吾尔自治区",),
    "西藏": ("西藏自治区",),
}


@dataclass(frozen=True, slots=True)
class Attribution:
    """Province and city in Chinese, e.g. 浙江 and 杭州; both None for an unknown block."""

    province: str | None
    city: str | None


UNKNOWN = Attribution(None, None)


def split_region(name: str) -> Attribution:
    """Split a geocoder name such as 浙江省杭州市 into province 浙江 and city 杭州.

    The trailing 市 of a city is dropped; other suffixes (地区, 自治州, 盟) are part
    of the name and kept. A name that matches no known form is returned as
    the province with no city, rather than guessed at.
    """
    for municipality in MUNICIPALITIES:
        if name.startswith(municipality):
            return Attribution(municipality, municipality)

    for region, full_names in AUTONOMOUS_REGIONS.items():
        for written in (*full_names, region):
            if name.startswith(written):
                return Attribution(region, _city_name(name[len(written) :]))

    province, marker, rest = name.partition("省")
    if marker and province:
        return Attribution(province, _city_name(rest))
    return Attribution(name or None, None)


def _city_name(rest: str) -> str | None:
    if len(rest) > 2 and rest.endswith("市"):
        return rest[:-1]
    return rest or None


@dataclass(frozen=True, slots=True)
class AttributionIndex:
    """Attribution per 7-digit block: ``blocks[n]`` indexes ``attributions``, 0 meaning unknown."""

    blocks: array[int]
    attributions: tuple[Attribution, ...]

    def lookup(self, digits: str) -> Attribution:
        if len(digits) != _NUMBER_DIGITS or not (digits.isascii() and digits.isdigit()):
            return UNKNOWN
        if digits[0] != "1":
            return UNKNOWN
        return self.attributions[self.blocks[int(digits[1:BLOCK_DIGITS])]]


def build_index(names_by_prefix: Iterable[tuple[str, str]]) -> AttributionIndex:
    """Expand (national prefix, Chinese name) pairs into a 7-digit block index.

    Only mobile prefixes (13 to 19) of 2 to 7 digits are used, and a longer
    prefix overrides the shorter one it falls under.
    """
    attributions: list[Attribution] = [UNKNOWN]
    positions: dict[str, int] = {}
    blocks = array("H", bytes(2 * _BLOCK_COUNT))

    usable = [
        (prefix, name)
        for prefix, name in names_by_prefix
        if 1 < len(prefix) <= BLOCK_DIGITS
        and prefix[0] == "1"
        and prefix[1] in _MOBILE_SECOND_DIGITS
        and prefix.isdigit()
    ]
    usable.sort(key=lambda item: len(item[0]))

    for prefix, name in usable:
        position = positions.get(name)
        if position is None:
            position = len(attributions)
            positions[name] = position
            attributions.append(split_region(name))
        span = 10 ** (BLOCK_DIGITS - len(prefix))
        start = int(prefix[1:] or "0") * span
        blocks[start : start + span] = array("H", [position]) * span

    return AttributionIndex(blocks=blocks, attributions=tuple(attributions))


def geocoder_names(geocode_data: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    """Pick the mainland mobile prefixes and their Chinese names out of phonenumbers' geodata."""
    names: list[tuple[str, str]] = []
    for key, names_by_language in geocode_data.items():
        if not key.startswith(_COUNTRY_CODE + "1"):
            continue
        name = names_by_language.get("zh")
        if name:
            names.append((key[len(_COUNTRY_CODE) :], name))
    return names


_index: AttributionIndex | None = None


def load_index() -> AttributionIndex:
    """Return the attribution index: the shipped file if it matches phonenumbers, else built."""
    global _index
    if _index is None:
        _index = read_index_file(INDEX_FILE, phonenumbers.__version__) or build_index(
            _read_geocoder_names()
        )
    return _index


def write_index_file(path: Path, index: AttributionIndex, source_version: str) -> None:
    """Write ``index`` as built from phonenumbers ``source_version``.

    The layout: one JSON line (version and the attributions), then the blocks
    as little-endian unsigned 16-bit integers, all compressed with zlib.
    """
    header = {
        "phonenumbers": source_version,
        "attributions": [[item.province, item.city] for item in index.attributions],
    }
    blocks = array("H", index.blocks)
    if sys.byteorder != "little":
        blocks.byteswap()
    payload = json.dumps(header, ensure_ascii=False).encode() + b"\n" + blocks.tobytes()
    path.write_bytes(zlib.compress(payload, 9))


def read_index_file(path: Path, expected_version: str) -> AttributionIndex | None:
    """Return the index in ``path`` if it was built from ``expected_version``, else None."""
    try:
        payload = zlib.decompress(path.read_bytes())
    except FileNotFoundError:
        return None
    header_line, _, block_bytes = payload.partition(b"\n")
    header = json.loads(header_line)
    if header["phonenumbers"] != expected_version:
        return None
    blocks = array("H")
    blocks.frombytes(block_bytes)
    if sys.byteorder != "little":
        blocks.byteswap()
    if len(blocks) != _BLOCK_COUNT:
        raise ValueError(
            f"invalid attribution index {path}: {len(blocks)} blocks, expected "
            f"{_BLOCK_COUNT}; rebuild it with rebuild_index_file()"
        )
    attributions = tuple(Attribution(province, city) for province, city in header["attributions"])
    return AttributionIndex(blocks=blocks, attributions=attributions)


def _read_geocoder_names() -> list[tuple[str, str]]:
    """Read the mainland names out of phonenumbers' geodata, then unload it.

    The index keeps what it needs in about 2 MB. Nothing else in the service
    uses the geodata (a later import would simply load it again).
    """
    from phonenumbers.geodata import GEOCODE_DATA

    names = geocoder_names(GEOCODE_DATA)
    del GEOCODE_DATA
    for module in [name for name in sys.modules if name.startswith("phonenumbers.geodata")]:
        del sys.modules[module]
    if hasattr(phonenumbers, "geodata"):
        delattr(phonenumbers, "geodata")
    gc.collect()
    return names


def attribute(digits: str) -> Attribution:
    """Return the province and city of a canonical 11-digit number's block.

    Never raises: anything that is not 11 ASCII digits starting with 1, and
    any block missing from the data, yields ``Attribution(None, None)``.
    """
    index = _index or load_index()

    # The same checks as AttributionIndex.lookup, inlined: this runs once per queried number.
    if len(digits) == _NUMBER_DIGITS and digits.isdigit() and digits.isascii() and digits[0] == "1":
        return index.attributions[index.blocks[int(digits[1:BLOCK_DIGITS])]]
    return UNKNOWN


def rebuild_index_file() -> Path:
    """Write the shipped index again from the installed phonenumbers and return its path."""
    write_index_file(INDEX_FILE, build_index(_read_geocoder_names()), phonenumbers.__version__)
    return INDEX_FILE
