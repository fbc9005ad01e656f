"""The one settings object, read from ``PHONESTATUS_*`` environment variables at start.

Create it once (``Settings()``) in the CLI or ``create_app`` and pass it down;
domain code never imports a global settings instance.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that must never be used as a real secret key outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "dev"})
SECRET_KEY_FILE = "secret.key"
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class ConnectorName(StrEnum):
    SIMULATED = "simulated"
    ALIYUN = "aliyun"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHONESTATUS_", extra="ignore")

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="development or production; production rejects placeholder secrets",
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
    writer_process: bool = Field(
        default=True,
        description="commit the gateway's query records (and, on SQLite, batch chunks) in "
        "separate writer processes, so that work runs on another core; off: in the server "
        "process (SQLite: a thread)",
    )
    log_format: LogFormat = Field(
        default=LogFormat.JSON,
        description="log lines of `serve` on stderr: json (one JSON object per line, for log "
        "collectors) or console (aligned text for a terminal, slower)",
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
    gateway_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="seconds the gateway reuses an AccessKey, account standing or AuthCode check; "
        "disabling a key or suspending an account takes effect within this time (0: no reuse)",
    )

    # Detection
    connector: ConnectorName = Field(
        default=ConnectorName.SIMULATED,
        description="carrier network to query: simulated (embedded) or aliyun (upstream Dytnsapi)",
    )
    query_timeout_seconds: float = Field(
        default=3.0, gt=0, description="time a lookup may take before it answers UNKNOWN"
    )
    number_rate_limit: str = Field(
        default="5/minute",
        description="per-number frequency guard in `limits` notation, or `off`",
    )
    result_cache: bool = Field(default=False, description="cache results per status TTL")
    result_cache_ttl_seconds: str = Field(
        default="",
        description="cache lifetime per status, e.g. `NORMAL=21600,POWER_OFF=600`; "
        "statuses left out keep their defaults",
    )
    simulator_overrides: Path | None = Field(
        default=None,
        description="CSV pinning numbers to answers: number,status,carrier,barred,ported_to",
    )
    simulator_seed: str = Field(
        default="phonestatus-simulator",
        description="key of the hash that gives each simulated number its state",
    )
    simulator_distribution: str = Field(
        default="",
        description="share of numbers per network state, e.g. `in_service=0.9,not_allocated=0.1`; "
        "empty keeps the built-in distribution",
    )
    simulator_latency_scale: float = Field(
        default=1.0, ge=0, description="multiplies every simulated latency; 0 means no delay"
    )
    simulator_latency_mean_ms: str = Field(
        default="",
        description="mean simulated latency per carrier in ms, e.g. `CMCC=450,CTCC=550`",
    )
    simulator_latency_sigma: float = Field(
        default=0.6, gt=0, description="log-normal sigma of simulated latency"
    )
    simulator_carrier_capacity: str = Field(
        default="CMCC=2000/second,CUCC=1000/second,CTCC=1000/second,CBN=200/second",
        description="lookups per carrier before it answers OperatorLimit, in `limits` notation",
    )
    simulator_fault_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of simulated lookups that time out or fail"
    )
    aliyun_endpoint: str = Field(
        default="dytnsapi.aliyuncs.com", description="upstream Dytnsapi host[:port]"
    )
    aliyun_protocol: str = Field(default="https", description="https or http for the upstream")
    aliyun_access_key_id: str | None = Field(default=None, description="upstream AccessKey ID")
    aliyun_access_key_secret: SecretStr | None = Field(
        default=None, description="upstream AccessKey secret"
    )
    aliyun_auth_code: str | None = Field(
        default=None, description="AuthCode sent with every upstream status query"
    )

    # Billing
    billing_cycle_minutes: int = Field(default=60, gt=0)
    settlement_interval_seconds: int = Field(default=60, gt=0)
    billing_unit_price_cny: str = Field(
        default="0.100", description="standard price per billable query in CNY, up to 3 decimals"
    )
    billing_action_prices_cny: dict[str, str] = Field(
        default_factory=dict,
        description='per-action unit prices in CNY as JSON, e.g. {"DescribeEmptyNumber": "0.05"}',
    )
    billing_settlement_grace_seconds: int = Field(
        default=120,
        ge=0,
        description="wait after a cycle ends before settling it, so in-flight queries commit",
    )
    billing_low_balance_cny: str = Field(
        default="10", description="notify the account when its balance drops below this (CNY)"
    )
    notify_webhook_url: str | None = Field(
        default=None, description="POST billing notifications as JSON to this URL"
    )
    notify_smtp_host: str | None = Field(
        default=None, description="SMTP server for billing notification emails"
    )
    notify_smtp_port: int = Field(default=25, description="SMTP server port")
    notify_smtp_sender: str = Field(
        default="phonestatus@localhost", description="From address of notification emails"
    )
    billing_settlement_enabled: bool = Field(
        default=True, description="settle billing cycles periodically inside `phonestatus serve`"
    )

    # Batch
    batch_max_file_bytes: int = Field(
        default=256 * 1024 * 1024, gt=0, description="largest accepted batch upload, in bytes"
    )
    batch_max_rows: int = Field(
        default=5_000_000, gt=0, description="most rows (lines) accepted in one batch file"
    )
    batch_max_xlsx_uncompressed_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="largest total decompressed size of an XLSX file's parts, in bytes (zip bomb guard)",
    )
    batch_chunk_size: int = Field(
        default=2000,
        gt=0,
        le=10_000,
        description="distinct numbers a worker claims and commits at once",
    )
    batch_query_concurrency: int = Field(
        default=64, gt=0, description="queries one batch worker keeps in flight"
    )
    batch_parallel_chunks: int = Field(
        default=4,
        gt=0,
        description="chunks one batch worker processes at once on PostgreSQL (SQLite: always 1)",
    )
    batch_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often an idle batch worker looks for new work"
    )
    batch_worker_enabled: bool = Field(
        default=True, description="run a batch worker inside `phonestatus serve`"
    )
    batch_webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="timeout of one job-completion webhook delivery"
    )

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

        Production mode raises ``ValueError`` when the value is set to a
        placeholder or to fewer than 32 characters. In development an empty
        value counts as unset.
        """
        value = self.secret_key.get_secret_value() if self.secret_key is not None else None
        if (
            value is not None
            and self.environment is Environment.PRODUCTION
            and (value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_KEY_LENGTH)
        ):
            raise ValueError(
                "PHONESTATUS_SECRET_KEY is a placeholder or shorter than "
                f"{MIN_SECRET_KEY_LENGTH} characters; set a random value of "
                f"{MIN_SECRET_KEY_LENGTH}+ characters or unset it to generate one"
            )
        if value is not None and value.strip():
            return value.encode()

        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Written to a private temporary file and linked into place, so two
        # processes starting together agree on one key: the second link fails
        # and that process reads the first one's key.
        temporary = path.with_name(f"{SECRET_KEY_FILE}.{os.getpid()}.tmp")
        temporary.touch(mode=0o600)
        try:
            temporary.write_text(secrets.token_urlsafe(48) + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
        return path.read_text().strip().encode()


def to_async_url(url: str) -> str:
    """Map a plain database URL to the async driver SQLAlchemy needs."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    return url
