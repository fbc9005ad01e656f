"""CLI fixtures: environment pointing the commands at a test database and data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

# One key for every CLI test, so the demo AccessKey that `quickstart` stores in
# the shared test database always decrypts.
CLI_SECRET_KEY = "cli-tests-secret-key-0123456789abcdef"


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set PHONESTATUS_* for in-process runs and return the same values for subprocesses."""
    values = {
        "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
        "PHONESTATUS_DATABASE_URL": db_url,
        "PHONESTATUS_SECRET_KEY": CLI_SECRET_KEY,
        "PHONESTATUS_ENVIRONMENT": "development",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
