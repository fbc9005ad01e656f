from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phonestatus.settings import SECRET_KEY_FILE, Environment, Settings

STRONG_KEY = "k" * 40


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's or CI's own PHONESTATUS_* values must not leak into these tests.
    for name in ("PHONESTATUS_SECRET_KEY", "PHONESTATUS_ENVIRONMENT", "PHONESTATUS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


class TestResolveSecretKey:
    def test_resolve_secret_key_unset_generates_file(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path / "data")

        key = settings.resolve_secret_key()

        path = tmp_path / "data" / SECRET_KEY_FILE
        assert path.read_text().strip().encode() == key
        assert len(key) >= 32

    def test_resolve_secret_key_generated_file_is_private(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)

        settings.resolve_secret_key()

        mode = stat.S_IMODE((tmp_path / SECRET_KEY_FILE).stat().st_mode)
        assert mode == 0o600

    def test_resolve_secret_key_unset_reuses_file(self, tmp_path: Path) -> None:
        first = Settings(data_dir=tmp_path).resolve_secret_key()

        second = Settings(data_dir=tmp_path).resolve_secret_key()

        assert first == second

    def test_resolve_secret_key_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        Settings(data_dir=tmp_path).resolve_secret_key()

        assert sorted(path.name for path in tmp_path.iterdir()) == [SECRET_KEY_FILE]

    def test_resolve_secret_key_set_value_wins(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, secret_key=STRONG_KEY)

        key = settings.resolve_secret_key()

        assert key == STRONG_KEY.encode()
        assert not (tmp_path / SECRET_KEY_FILE).exists()

    def test_resolve_secret_key_from_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PHONESTATUS_SECRET_KEY", STRONG_KEY)

        key = Settings(data_dir=tmp_path).resolve_secret_key()

        assert key == STRONG_KEY.encode()

    def test_resolve_secret_key_empty_in_development_generates(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, secret_key="")

        key = settings.resolve_secret_key()

        assert key == (tmp_path / SECRET_KEY_FILE).read_text().strip().encode()

    @pytest.mark.parametrize("placeholder", ["changeme", "CHANGEME", "secret", "placeholder", ""])
    def test_resolve_secret_key_placeholder_in_production_raises(
        self, tmp_path: Path, placeholder: str
    ) -> None:
        settings = Settings(
            data_dir=tmp_path, secret_key=placeholder, environment=Environment.PRODUCTION
        )

        with pytest.raises(ValueError, match="PHONESTATUS_SECRET_KEY is a placeholder"):
            settings.resolve_secret_key()

    def test_resolve_secret_key_short_in_production_raises(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path, secret_key="x" * 31, environment=Environment.PRODUCTION
        )

        with pytest.raises(ValueError, match="shorter than 32 characters"):
            settings.resolve_secret_key()

    def test_resolve_secret_key_error_hides_value(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path, secret_key="short-but-private", environment=Environment.PRODUCTION
        )

        with pytest.raises(ValueError) as raised:
            settings.resolve_secret_key()

        assert "short-but-private" not in str(raised.value)

    def test_resolve_secret_key_placeholder_in_development_allowed(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, secret_key="changeme")

        assert settings.resolve_secret_key() == b"changeme"

    def test_resolve_secret_key_unset_in_production_generates(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, environment=Environment.PRODUCTION)

        key = settings.resolve_secret_key()

        assert (tmp_path / SECRET_KEY_FILE).read_text().strip().encode() == key

    def test_resolve_secret_key_strong_in_production_accepted(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path, secret_key=STRONG_KEY, environment=Environment.PRODUCTION
        )

        assert settings.resolve_secret_key() == STRONG_KEY.encode()


class TestSqlalchemyUrl:
    def test_sqlalchemy_url_default_is_sqlite_in_data_dir(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)

        assert settings.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path / 'phonestatus.sqlite3'}"

    def test_sqlalchemy_url_postgresql_uses_asyncpg(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, database_url="postgresql://u@127.0.0.1:5432/db")

        assert settings.sqlalchemy_url == "postgresql+asyncpg://u@127.0.0.1:5432/db"
