"""CLI fixtures: environment pointing the commands at a test database and data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# One key for every CLI test, so AccessKeys created by one command decrypt in the next.
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


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_cli_env(
    request: pytest.FixtureRequest,
    fresh_database_url: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Like ``cli_env`` but on an empty database of its own, for tests of the demo account."""
    values = {
        "PHONESTATUS_DATA_DIR": str(tmp_path / "data"),
        "PHONESTATUS_DATABASE_URL": fresh_database_url(str(request.param)),
        "PHONESTATUS_SECRET_KEY": CLI_SECRET_KEY,
        "PHONESTATUS_ENVIRONMENT": "development",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
