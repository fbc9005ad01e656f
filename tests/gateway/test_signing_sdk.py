"""The V1 string-to-sign against the old Python SDK's own composer, for arbitrary values."""

from __future__ import annotations

from aliyunsdkcore.auth.composer import rpc_signature_composer
from hypothesis import given
from hypothesis import strategies as st

from phonestatus.gateway import signing

# Module-level double-underscore names are not mangled, so getattr reaches the SDK helper.
sdk_string_to_sign = getattr(rpc_signature_composer, "__compose_string_to_sign")

names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    min_size=1,
    max_size=12,
)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


class TestV1AgainstOldSdk:
    @given(
        params=st.dictionaries(names, values, max_size=8), method=st.sampled_from(["GET", "POST"])
    )
    def test_string_to_sign_matches_sdk(self, params: dict[str, str], method: str) -> None:
        assert signing.v1_string_to_sign(method, params) == sdk_string_to_sign(method, params)
