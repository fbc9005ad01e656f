from __future__ import annotations

import pytest

from phonestatus.accounts.agreements import (
    AGREEMENT_LOCALES,
    CURRENT_AGREEMENT_VERSION,
    agreement_text,
    available_versions,
)


class TestAvailableVersions:
    def test_available_versions_include_current(self) -> None:
        assert CURRENT_AGREEMENT_VERSION in available_versions()

    def test_available_versions_unknown_feature_is_empty(self) -> None:
        assert available_versions("no_such_feature") == frozenset()


class TestAgreementText:
    @pytest.mark.parametrize("locale", AGREEMENT_LOCALES)
    def test_agreement_text_ships_every_locale(self, locale: str) -> None:
        for version in available_versions():
            assert agreement_text(version, locale=locale).startswith("# ")

    def test_agreement_text_default_is_chinese(self) -> None:
        assert "服务协议" in agreement_text()

    def test_agreement_text_english(self) -> None:
        assert "Service Agreement" in agreement_text(locale="en")

    def test_agreement_text_unknown_version_raises(self) -> None:
        with pytest.raises(LookupError, match="version 999"):
            agreement_text(999)

    def test_agreement_text_unknown_locale_raises(self) -> None:
        with pytest.raises(LookupError, match="'fr'"):
            agreement_text(locale="fr")
