import re

import pytest

from phonestatus.commands.common import version_text
from phonestatus.numbers import SEGMENT_DATA_VERSION, Carrier, NumberKind, lookup_segment
from phonestatus.numbers.segments import (
    SegmentTableError,
    load_segment_table,
    parse_segment_table,
)

# The published carrier table, one entry per segment, written out in full.
PUBLISHED_SEGMENTS: dict[Carrier, tuple[str, ...]] = {
    Carrier.CTCC: (
        "133", "1349", "153", "1700", "1701", "1702", "173", "177", "180", "181", "189",
        "191", "199",
    ),
    Carrier.CUCC: (
        "130", "131", "132", "145", "155", "156", "166", "167", "171", "175", "176", "185",
        "186", "1704", "1707", "1708", "1709",
    ),
    Carrier.CMCC: (
        "1340", "1341", "1342", "1343", "1344", "1345", "1346", "1347", "1348",
        "135", "136", "137", "138", "139", "147", "148", "150", "151", "152", "154", "157",
        "158", "159", "165", "172", "178", "182", "183", "184", "187", "188", "198",
        "1703", "1705", "1706",
    ),
}  # fmt: skip

# Segments allocated after the published table.
LATER_SEGMENTS: dict[str, Carrier] = {
    "162": Carrier.CTCC,
    "190": Carrier.CTCC,
    "192": Carrier.CBN,
    "193": Carrier.CTCC,
    "195": Carrier.CMCC,
    "196": Carrier.CUCC,
    "197": Carrier.CMCC,
    "149": Carrier.CTCC,
    "146": Carrier.CUCC,
    "1400": Carrier.CUCC,
    "1410": Carrier.CTCC,
    "1440": Carrier.CMCC,
    "1740": Carrier.CTCC,
}

MVNO_SEGMENTS: dict[str, Carrier] = {
    "162": Carrier.CTCC,
    "165": Carrier.CMCC,
    "167": Carrier.CUCC,
    "1700": Carrier.CTCC,
    "1701": Carrier.CTCC,
    "1702": Carrier.CTCC,
    "1703": Carrier.CMCC,
    "1704": Carrier.CUCC,
    "1705": Carrier.CMCC,
    "1706": Carrier.CMCC,
    "1707": Carrier.CUCC,
    "1708": Carrier.CUCC,
    "1709": Carrier.CUCC,
    "171": Carrier.CUCC,
}


def number_in(prefix: str) -> str:
    """Return an 11-digit number in the segment ``prefix``."""
    return (prefix + "12345678901")[:11]


PUBLISHED_CASES = [
    (prefix, carrier) for carrier, prefixes in PUBLISHED_SEGMENTS.items() for prefix in prefixes
]


class TestLookupSegment:
    @pytest.mark.parametrize(("prefix", "carrier"), PUBLISHED_CASES)
    def test_lookup_segment_published_carrier(self, prefix: str, carrier: Carrier) -> None:
        segment = lookup_segment(number_in(prefix))

        assert segment is not None
        assert segment.carrier is carrier

    @pytest.mark.parametrize(("prefix", "carrier"), sorted(LATER_SEGMENTS.items()))
    def test_lookup_segment_later_allocation(self, prefix: str, carrier: Carrier) -> None:
        segment = lookup_segment(number_in(prefix))

        assert segment is not None
        assert segment.carrier is carrier

    @pytest.mark.parametrize(("prefix", "host"), sorted(MVNO_SEGMENTS.items()))
    def test_lookup_segment_mvno_host(self, prefix: str, host: Carrier) -> None:
        segment = lookup_segment(number_in(prefix))

        assert segment is not None
        assert segment.is_mvno
        assert segment.carrier is host

    @pytest.mark.parametrize("prefix", ["130", "138", "1349", "1340", "189", "192", "199"])
    def test_lookup_segment_basic_not_mvno(self, prefix: str) -> None:
        segment = lookup_segment(number_in(prefix))

        assert segment is not None
        assert not segment.is_mvno

    def test_lookup_segment_1349_satellite(self) -> None:
        segment = lookup_segment("13491234567")

        assert segment is not None
        assert segment.carrier is Carrier.CTCC
        assert segment.kind is NumberKind.SATELLITE
        assert segment.prefix == "1349"

    def test_lookup_segment_170_by_fourth_digit(self) -> None:
        carriers = {digit: lookup_segment(f"170{digit}1234567") for digit in "0123456789"}

        assert {d: s.carrier if s else None for d, s in carriers.items()} == {
            "0": Carrier.CTCC,
            "1": Carrier.CTCC,
            "2": Carrier.CTCC,
            "3": Carrier.CMCC,
            "4": Carrier.CUCC,
            "5": Carrier.CMCC,
            "6": Carrier.CMCC,
            "7": Carrier.CUCC,
            "8": Carrier.CUCC,
            "9": Carrier.CUCC,
        }

    @pytest.mark.parametrize(
        ("prefix", "kind"),
        [
            ("138", NumberKind.MOBILE),
            ("145", NumberKind.DATA_ONLY),
            ("147", NumberKind.DATA_ONLY),
            ("149", NumberKind.DATA_ONLY),
            ("146", NumberKind.IOT),
            ("148", NumberKind.IOT),
            ("1440", NumberKind.IOT),
            ("1740", NumberKind.SATELLITE),
        ],
    )
    def test_lookup_segment_kind(self, prefix: str, kind: NumberKind) -> None:
        segment = lookup_segment(number_in(prefix))

        assert segment is not None
        assert segment.kind is kind

    @pytest.mark.parametrize("prefix", ["100", "110", "120", "160", "194", "179", "1741", "1441"])
    def test_lookup_segment_unallocated_none(self, prefix: str) -> None:
        assert lookup_segment(number_in(prefix)) is None


class TestSegmentTable:
    def test_version_calendar_form(self) -> None:
        assert re.fullmatch(r"20\d\d\.\d{1,2}\.\d+", SEGMENT_DATA_VERSION)

    def test_version_shown_by_cli(self) -> None:
        assert f"segment data {SEGMENT_DATA_VERSION}" in version_text()

    def test_load_segment_table_prefixes_unique(self) -> None:
        prefixes = [segment.prefix for segment in load_segment_table().segments]

        assert len(prefixes) == len(set(prefixes))

    def test_four_digit_rows_outside_three_digit_rows(self) -> None:
        table = load_segment_table()
        three_digit = {s.prefix for s in table.segments if len(s.prefix) == 3}
        four_digit = {s.prefix for s in table.segments if len(s.prefix) == 4}

        assert not {prefix[:3] for prefix in four_digit} & three_digit

    def test_parse_segment_table_four_digit_overrides(self) -> None:
        table = parse_segment_table(
            "version,1\nprefix,carrier,is_mvno,kind,note\n134,CMCC,0,MOBILE,\n1349,CTCC,0,SATELLITE,\n"
        )

        assert table.by_prefix4["1348"].carrier is Carrier.CMCC
        assert table.by_prefix4["1349"].carrier is Carrier.CTCC

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "prefix,carrier,is_mvno,kind\n138,CMCC,0,MOBILE\n",
            "version,1\nprefix,carrier\n",
            "version,1\nprefix,carrier,is_mvno,kind\n13,CMCC,0,MOBILE\n",
            "version,1\nprefix,carrier,is_mvno,kind\n138,XXXX,0,MOBILE\n",
            "version,1\nprefix,carrier,is_mvno,kind\n138,CMCC,yes,MOBILE\n",
            "version,1\nprefix,carrier,is_mvno,kind\n138,CMCC,0,PAGER\n",
            "version,1\nprefix,carrier,is_mvno,kind\n138,CMCC\n",
        ],
    )
    def test_parse_segment_table_malformed(self, text: str) -> None:
        with pytest.raises(SegmentTableError):
            parse_segment_table(text)


class TestAgreementWithPhonenumbers:
    def test_segments_match_phonenumbers_carriers(self) -> None:
        carrier_by_prefix4 = phonenumbers_carriers()
        disagreements = []
        for prefix4, expected in sorted(carrier_by_prefix4.items()):
            segment = lookup_segment(number_in(prefix4))
            if segment is not None and segment.carrier is not expected:
                disagreements.append(prefix4)

        assert len(carrier_by_prefix4) > 500
        assert disagreements == []

    def test_segments_missing_from_table_known(self) -> None:
        missing = sorted(
            prefix4
            for prefix4 in phonenumbers_carriers()
            if lookup_segment(number_in(prefix4)) is None
        )

        # libphonenumber assigns 161 to China Broadnet and all of 174 to China
        # Telecom. The table leaves 161 and 1741-1749 out until an allocation for
        # public mobile service is confirmed, so numbers there are rejected, not guessed.
        assert missing == [f"161{d}" for d in "0123456789"] + [f"174{d}" for d in "123456789"]


def phonenumbers_carriers() -> dict[str, Carrier]:
    """Return libphonenumber's carrier for each 4-digit mobile prefix it covers, longest match first."""
    from phonenumbers.carrierdata import CARRIER_DATA

    carriers_by_name = {
        "China Mobile": Carrier.CMCC,
        "China Unicom": Carrier.CUCC,
        "China Telecom": Carrier.CTCC,
        "China Broadnet": Carrier.CBN,
    }
    result: dict[str, Carrier] = {}
    for value in range(1300, 2000):
        prefix4 = str(value)
        for length in (4, 3, 2):
            names = CARRIER_DATA.get("86" + prefix4[:length])
            if names:
                result[prefix4] = carriers_by_name[names["en"]]
                break
    return result


class TestLookupSegmentInput:
    @pytest.mark.parametrize("digits", ["", "1", "138", "+8613800138000", "１３８００１３８０００"])
    def test_lookup_segment_not_canonical_none(self, digits: str) -> None:
        assert lookup_segment(digits) is None
