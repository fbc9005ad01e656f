"""The one settings object, read from ``PHONESTATUS_*`` environment variables at start.

Create it once (``Settings()``) in the CLI or ``create_app`` and pass it down;
domain code never imports a global settings instance.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that must never be used as a real secret key outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "dev"})
SECRET_KEY_FILE = "secret.key"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConnectorName(StrEnum):
    SIMULATED = "simulated"
    ALIYUN = "aliyun"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHONESTATUS_", extra="ignore")

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="development or production; production refuses placeholder secrets",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("phonestatus")),
        description="directory for the SQLite database, the generated secret key and batch files",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means a SQLite file in the data dir. "
        "postgresql:// URLs are driven through asyncpg",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for rate limits, nonce replay and the result cache; unset keeps them in process",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="encrypts AccessKey secrets and signs console sessions; "
        "generated into the data dir on first start when unset",
    )

    # Gateway
    account_rate_limit: str = Field(
        default="200/second", description="per-account query rate in `limits` notation"
    )
    signature_window_seconds: int = Field(
        default=900, description="accepted clock skew of signed requests and nonce lifetime"
    )
    host_id: str = Field(default="dytnsapi.aliyuncs.com", description="HostId in error bodies")

    # Detection
    connector: ConnectorName = Field(default=ConnectorName.SIMULATED)
    query_timeout_seconds: float = Field(default=3.0, gt=0)
    number_rate_limit: str = Field(
        default="5/minute",
        description="per-number frequency guard in `limits` notation, or `off`",
    )
    result_cache: bool = Field(default=False, description="cache results per status TTL")
    simulator_overrides: Path | None = None
    simulator_seed: str = "phonestatus-simulator"
    simulator_latency_scale: float = Field(default=1.0, ge=0)
    simulator_fault_rate: float = Field(default=0.0, ge=0, le=1)
    aliyun_endpoint: str = "dytnsapi.aliyuncs.com"
    aliyun_protocol: str = "https"
    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: SecretStr | None = None
    aliyun_auth_code: str | None = None

    # Billing
    billing_cycle_minutes: int = Field(default=60, gt=0)
    settlement_interval_seconds: int = Field(default=60, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sqlalchemy_url(self) -> str:
        """Return the async SQLAlchemy URL for the configured database."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'phonestatus.sqlite3'}"
        return to_async_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    def resolve_secret_key(self) -> bytes:
        """Return the secret key, generating and persisting one in the data dir if unset.

        Production mode raises ``ValueError`` on a placeholder value.
        """
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            is_placeholder = value.strip().lower() in PLACEHOLDER_SECRETS
            if is_placeholder and self.environment is Environment.PRODUCTION:
                raise ValueError(
                    "PHONESTATUS_SECRET_KEY is a placeholder; set a random value of 32+ characters"
                )
            return value.encode()

        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        generated = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(generated + "\n")
        return generated.encode()


def to_async_url(url: str) -> str:
    """Map a plain database URL to the async driver SQLAlchemy needs."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    return url
