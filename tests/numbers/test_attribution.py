from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.geodata import GEOCODE_DATA

from phonestatus.numbers import Attribution, attribute
from phonestatus.numbers.attribution import (
    INDEX_FILE,
    MUNICIPALITIES,
    build_index,
    geocoder_names,
    load_index,
    read_index_file,
    split_region,
    write_index_file,
)

MAINLAND_PROVINCES = frozenset(
    {
        "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
        "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
        "云南", "陕西", "甘肃", "青海", "内蒙古", "广西", "西藏", "宁夏", "新疆",
    }
)  # fmt: skip


class TestAttribute:
    @pytest.mark.parametrize(
        ("digits", "province", "city"),
        [
            ("13800138000", "北京", "北京"),
            ("13905710000", "浙江", "杭州"),
            ("13412345678", "广东", "东莞"),
            ("13300000000", "广西", "南宁"),
        ],
    )
    def test_attribute_known_block(self, digits: str, province: str, city: str) -> None:
        assert attribute(digits) == Attribution(province, city)

    @pytest.mark.parametrize("digits", ["19212345678", "16212345678", "14911234567"])
    def test_attribute_block_missing_from_data(self, digits: str) -> None:
        assert attribute(digits) == Attribution(None, None)

    @pytest.mark.parametrize(
        "digits",
        [
            "",
            "1380013800",
            "138001380000",
            "1380013800x",
            "１３８００１３８０００",
            "10012345678",
            "23800138000",
        ],
    )
    def test_attribute_not_canonical_unknown(self, digits: str) -> None:
        assert attribute(digits) == Attribution(None, None)

    def test_attribute_agrees_with_geocoder_prefix(self) -> None:
        # Every 7-digit key in the data must come back as its own name, split.
        index = load_index()
        seven_digit = [(p, n) for p, n in geocoder_names(GEOCODE_DATA) if len(p) == 7]

        mismatched = [
            prefix
            for prefix, name in seven_digit
            if prefix[1] in "3456789" and index.lookup(prefix + "0000") != split_region(name)
        ]

        assert seven_digit
        assert mismatched == []


class TestBuildIndex:
    def test_build_index_longer_prefix_overrides(self) -> None:
        index = build_index([("1381234", "浙江省杭州市"), ("138", "北京市")])

        assert index.lookup("13812340000") == Attribution("浙江", "杭州")
        assert index.lookup("13812350000") == Attribution("北京", "北京")
        assert index.lookup("13900000000") == Attribution(None, None)

    def test_build_index_order_independent(self) -> None:
        index = build_index([("138", "北京市"), ("1381234", "浙江省杭州市")])

        assert index.lookup("13812340000") == Attribution("浙江", "杭州")

    def test_build_index_skips_landline_prefixes(self) -> None:
        index = build_index([("10", "北京市"), ("1381", "浙江省杭州市"), ("13812345", "上海市")])

        assert index.lookup("10012345678") == Attribution(None, None)
        assert index.lookup("13812345678") == Attribution("浙江", "杭州")

    def test_build_index_names_shared(self) -> None:
        index = build_index([("1380", "北京市"), ("1390", "北京市")])

        assert len(index.attributions) == 2


class TestSplitRegion:
    @pytest.mark.parametrize(
        ("name", "province", "city"),
        [
            ("浙江省杭州市", "浙江", "杭州"),
            ("吉林省吉林市", "吉林", "吉林"),
            ("北京市", "北京", "北京"),
            ("天津", "天津", "天津"),
            ("重庆市", "重庆", "重庆"),
            ("广西南宁市", "广西", "南宁"),
            ("广西壮族自治区南宁市", "广西", "南宁"),
            ("内蒙古锡林郭勒盟", "内蒙古", "锡林郭勒盟"),
            ("新疆乌鲁木齐市", "新疆", "乌鲁木齐"),
            ("新疆维吾尔自治区喀什地区", "新疆", "喀什地区"),
            ("西藏拉萨市", "西藏", "拉萨"),
            ("湖北省恩施土家族苗族自治州", "湖北", "恩施土家族苗族自治州"),
            ("湖北省神农架林区", "湖北", "神农架林区"),
            ("黑龙江省大兴安岭地区", "黑龙江", "大兴安岭地区"),
            ("海南省", "海南", None),
            ("香港", "香港", None),
            ("", None, None),
        ],
    )
    def test_split_region(self, name: str, province: str | None, city: str | None) -> None:
        assert split_region(name) == Attribution(province, city)

    def test_split_region_every_geocoder_name(self) -> None:
        names = {name for _, name in geocoder_names(GEOCODE_DATA)}

        attributions = [split_region(name) for name in names]

        assert {a.province for a in attributions} <= MAINLAND_PROVINCES
        assert all(a.city for a in attributions)
        assert all(a.province == a.city for a in attributions if a.province in MUNICIPALITIES)


class TestAttributeProperties:
    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=20))
    def test_attribute_any_text_returns(self, text: str) -> None:
        result = attribute(text)

        assert isinstance(result, Attribution)

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="0123456789", min_size=11, max_size=11))
    def test_attribute_any_eleven_digits_known_province_or_none(self, digits: str) -> None:
        result = attribute(digits)

        assert result.province is None or result.province in MAINLAND_PROVINCES
        assert (result.province is None) == (result.city is None)


class TestIndexFile:
    def test_file_round_trip(self, tmp_path: Path) -> None:
        index = build_index([("138", "北京市"), ("1381234", "浙江省杭州市"), ("139", "新疆")])
        path = tmp_path / "index.bin"
        write_index_file(path, index, "1.2.3")

        assert read_index_file(path, "1.2.3") == index

    def test_other_version_ignored(self, tmp_path: Path) -> None:
        path = tmp_path / "index.bin"
        write_index_file(path, build_index([("138", "北京市")]), "1.2.3")

        assert read_index_file(path, "1.2.4") is None
        assert read_index_file(tmp_path / "missing.bin", "1.2.3") is None

    def test_loaded_index_matches_geodata(self) -> None:
        # The shipped file when it matches the installed phonenumbers, else a build.
        assert load_index() == build_index(geocoder_names(GEOCODE_DATA))

    def test_shipped_file_matches_geodata(self) -> None:
        shipped = read_index_file(INDEX_FILE, phonenumbers.__version__)
        if shipped is None:
            # A newer phonenumbers release still works (the index is built at
            # first use); the shipped file only saves that time and memory.
            pytest.skip(
                f"{INDEX_FILE.name} was built from another phonenumbers than "
                f"{phonenumbers.__version__}; run "
                "phonestatus.numbers.attribution.rebuild_index_file()"
            )

        assert shipped == build_index(geocoder_names(GEOCODE_DATA))
