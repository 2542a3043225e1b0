"""Typed settings: one TOML file, overridden by RADIUS_CONTRACTS_* environment variables.

Built once by the CLI and passed down; there is deliberately no module-level instance, so tests
and several daemons in one process can each build their own.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from radius_contracts.errors import ConfigError

ENV_PREFIX = "RADIUS_CONTRACTS_"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
INSTALLED_STATE_DIR = Path("/var/lib/radius-contracts")


def default_state_dir() -> Path:
    """/var/lib/radius-contracts when it exists (systemd's StateDirectory), else ./var."""
    return INSTALLED_STATE_DIR if INSTALLED_STATE_DIR.is_dir() else Path("var").resolve()


def default_dictionary() -> Path:
    """The master dictionary shipped with the package (installed data files or the checkout)."""
    candidates = [
        Path(sys.prefix) / "share" / "radius-contracts" / "dictionaries" / "dictionary",
        Path(__file__).resolve().parents[2] / "dictionaries" / "dictionary",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[-1]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is an SQLite file in state_dir. "
        "sqlite:// and postgresql:// are switched to their async drivers.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connection pool size.")
    migrate_on_start: bool = Field(
        default=True, description="Apply pending migrations when `serve` starts."
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="SQLite only. FULL syncs every commit to disk, so an acknowledged "
        "accounting record survives a power cut; NORMAL survives only a crash of the daemon.",
    )
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="PostgreSQL only: seconds to wait for a new connection. While the database "
        "is unreachable this bounds how long the API takes to answer 503 and how long "
        "accounting waits before it goes to the spool.",
    )
    statement_timeout: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="PostgreSQL only: seconds any statement may take before the daemon gives "
        "up on it, so that a database that vanishes mid-query (host gone, network partition) "
        "sends accounting to the spool and the API to 503 instead of hanging until TCP gives "
        "up. Migrations are exempt.",
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        if url is None:
            return None
        for plain, driver in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            return url
        raise ValueError("must start with sqlite:// or postgresql://")


class RadiusSettings(_Section):
    bind: tuple[str, ...] = Field(
        default=("0.0.0.0",),  # noqa: S104
        description="Address(es) the RADIUS listeners bind to: one address or a list, "
        'e.g. ["0.0.0.0", "::"] for IPv4 and IPv6.',
    )
    auth_port: int = Field(default=1812, ge=0, le=65535)
    acct_port: int = Field(default=1813, ge=0, le=65535)
    dictionary: Path = Field(
        default_factory=default_dictionary, description="Master FreeRADIUS-format dictionary."
    )
    extra_dictionary_dirs: tuple[Path, ...] = Field(
        default=(),
        description="Directories whose `dictionary` file is loaded after ours, "
        "e.g. /usr/share/freeradius.",
    )
    reject_delay: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Seconds an Access-Reject is held back (slows password guessing); "
        "other requests are not held up by it.",
    )
    reply_message: bool = Field(
        default=True, description="Say in a Reply-Message why an Access-Request was rejected."
    )
    duplicate_window: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a reply is kept to answer retransmits (RFC 5080 §2.2.2).",
    )
    max_delayed_rejects: int = Field(
        default=10_000,
        ge=1,
        description="Rejects waiting out reject_delay at once; beyond it requests that "
        "would be rejected are dropped.",
    )
    chap_challenge_window: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Seconds a CHAP challenge (CHAP-Challenge, else the Request Authenticator) "
        "stays used per NAS: another request with it is rejected, a retransmit of the same "
        "request is not. 0 turns the reuse check off.",
    )
    receive_buffer: int = Field(
        default=4 * 1024 * 1024,
        ge=65536,
        description="Socket receive buffer in bytes, to absorb bursts (capped by "
        "net.core.rmem_max).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes answering Access-Requests. 1: the main process does, as "
        "everything else. More: that many worker processes share the authentication port "
        "(SO_REUSEPORT), each with its own index, so every core answers; the main process "
        "keeps the API, accounting, the scheduler and CoA. Logins of contracts with a "
        "simultaneous-use limit are then decided in the database. About one per core, "
        "leaving one for the main process under accounting load.",
    )

    @field_validator("bind", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one address")
        for address in value:
            ipaddress.ip_address(address)
        return value


class RadsecSettings(_Section):
    """RADIUS over TLS (RFC 6614); off unless ``enabled`` with a certificate, key and CA."""

    enabled: bool = Field(default=False, description="Listen for RadSec connections.")
    bind: tuple[str, ...] = Field(
        default=("0.0.0.0",),  # noqa: S104
        description="Address(es) the RadSec listener binds to.",
    )
    port: int = Field(default=2083, ge=0, le=65535, description="TCP port (RFC 6614 §2.1).")
    certificate: Path | None = Field(
        default=None, description="PEM server certificate (chain) presented to NAS."
    )
    private_key: Path | None = Field(default=None, description="PEM private key of it.")
    ca_file: Path | None = Field(
        default=None, description="PEM CA certificate(s) NAS client certificates must chain to."
    )
    handshake_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a TLS handshake may take."
    )
    idle_timeout: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="Seconds a connection may stay without a packet before it is closed; "
        "0 keeps it open.",
    )
    max_connections: int = Field(
        default=256, ge=1, le=100_000, description="Connections open at once, handshakes included."
    )
    max_in_flight: int = Field(
        default=256,
        ge=1,
        le=256,
        description="Requests of one connection being handled at once; more are dropped and "
        "counted (an Identifier is one octet, so 256 at most).",
    )
    radius_1_1: Literal["forbid", "allow", "require"] = Field(
        default="allow",
        description="RADIUS/1.1 (RFC 9765: no MD5, no shared secret on the wire), negotiated "
        "by TLS ALPN. allow: used when the NAS offers it, RADIUS/1.0 RadSec otherwise (the "
        "RFC's default); require: only RADIUS/1.1 over TLS 1.3, a NAS that does not "
        "negotiate it gets a Protocol-Error and is disconnected; forbid: never offered.",
    )

    @field_validator("bind", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one address")
        for address in value:
            ipaddress.ip_address(address)
        return value

    @model_validator(mode="after")
    def _files_when_enabled(self) -> RadsecSettings:
        if self.enabled:
            missing = [
                name
                for name in ("certificate", "private_key", "ca_file")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"enabled needs {', '.join(missing)}")
        return self


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Management API listen address.")
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body; a bigger one gets 413 before it is read.",
    )
    max_bulk_body_bytes: int = Field(
        default=8_388_608,
        ge=1024,
        description="Largest body of the bulk endpoints (POST /api/v1/contracts/bulk/…, "
        "PUT /api/v1/contracts/by-external/{app}).",
    )
    max_requests: int = Field(
        default=32,
        ge=1,
        description="Requests handled at once; beyond it 503 with Retry-After.",
    )
    max_connections: int = Field(
        default=4096,
        ge=16,
        description="Open connections; a request on a connection beyond it gets 503.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers (from connecting or "
        "from the previous response); then the connection is closed.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a whole request body; then 408.",
    )
    keep_alive_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds an idle keep-alive connection stays open between requests.",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=4096,
        description="Largest request line plus headers; a bigger one closes the connection.",
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class AuthLogSettings(_Section):
    retention_days: int = Field(
        default=30,
        ge=1,
        description="The auth log is kept in one table per UTC day; a day's table is dropped "
        "whole once the whole day is older than this many days.",
    )
    max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Beyond this many entries the oldest whole tables are dropped. A day "
        "goes on in a new table every max_rows / 4 entries (at least 1,000), so a busy today is "
        "bounded too; its newest table is never dropped.",
    )
    unknown_rows_per_minute: int = Field(
        default=1000,
        ge=1,
        description="Requests whose User-Name matches no contract fold into one row per "
        "User-Name, NAS, result and reason per minute (with a count); at most this many such "
        "rows per minute, the rest of the minute fold into one row per NAS, result and reason.",
    )
    flush_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "Seconds between writes of recorded outcomes, at most 250 per transaction (sooner "
            "when 250 are waiting)."
        ),
    )
    max_pending: int = Field(
        default=100_000,
        ge=1000,
        description="Outcomes held in memory while the database is slow or down; beyond it "
        "the oldest are dropped and counted.",
    )


class AccountingSettings(_Section):
    interim_interval: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Acct-Interim-Interval (seconds) sent in every Access-Accept unless the NAS "
        "has its own; 0 sends none. NAS clamp it (RFC 2869 §5.16: at least 60).",
    )
    stale_after: float = Field(
        default=3.0,
        ge=1.5,
        le=100,
        description="An open session without an update for this many interim intervals is "
        'closed with terminate cause "Stale" (the NAS lost it, e.g. it rebooted silently).',
    )
    history_days: int = Field(
        default=400,
        ge=1,
        description="Closed sessions older than this many days are deleted (daily usage "
        "totals are kept as long as usage_days).",
    )
    usage_days: int = Field(
        default=1100, ge=1, description="Daily usage totals older than this many days are deleted."
    )
    simultaneous_use_decisions: Literal["auto", "database", "local"] = Field(
        default="auto",
        description="Where a login of a contract with a simultaneous-use limit is decided. "
        "database: in one transaction per batch that locks the contract, so logins through "
        "several nodes (or worker processes) at the same moment take at most the limit; "
        "local: from this process's view of the sessions (no other node may decide; with "
        "worker processes the main process's view decides for all of them); auto: database "
        "with PostgreSQL, else local.",
    )
    simultaneous_use_offline: Literal["local", "refuse"] = Field(
        default="local",
        description="While the database is unreachable (decisions = database): local decides "
        "from this process's view (every node's sessions up to the outage, this process's "
        "logins since); refuse refuses every login of a contract with a limit.",
    )
    start_wait: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Seconds an accepted login counts against its contract's simultaneous-use "
        "limit while its Accounting-Start is on the way.",
    )
    max_pending: int = Field(
        default=50_000,
        ge=100,
        description="Accounting-Requests waiting to be committed; beyond it new ones are "
        "dropped and counted (the NAS retransmits).",
    )
    max_batch: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="Most Accounting-Requests written in one transaction (group commit).",
    )
    commit_delay: float = Field(
        default=0.002,
        ge=0,
        le=0.1,
        description="Seconds the writer waits for more Accounting-Requests before a commit "
        "when fewer than 32 are waiting: fewer, larger commits at moderate rates cost much "
        "less CPU and disk for a few ms of latency. 0: commit at once.",
    )
    session_refresh: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="With PostgreSQL (several nodes), seconds between reloads of the open "
        "sessions other nodes recorded, for the simultaneous-use check.",
    )
    jobs_interval: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="Seconds between runs of the stale-session, history and lease-expiry jobs.",
    )
    spool: bool = Field(
        default=True,
        description="While the database cannot take accounting, write it to a local spool "
        "(state_dir/accounting-spool, fsync'd before the Accounting-Response) and replay it "
        "in order when the database is back. false: leave such requests unanswered.",
    )
    spool_max_mb: int = Field(
        default=1024,
        ge=1,
        description="Most megabytes the spool may hold (about 2,000 records per MB); beyond "
        "it requests go unanswered until the replay frees room.",
    )


class CoaSettings(_Section):
    timeout: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds to wait for a NAS's answer to a CoA or Disconnect-Request before "
        "sending it again; each further wait is `backoff` times longer.",
    )
    tries: int = Field(
        default=3, ge=1, le=10, description="Times a request is sent before it counts as timed out."
    )
    backoff: float = Field(default=2.0, ge=1, le=10, description="Growth of the wait per try.")
    max_in_flight: int = Field(
        default=1024,
        ge=1,
        le=65536,
        description="Requests outstanding at once over all NAS (at most 256 per NAS).",
    )
    layout_rate: float = Field(
        default=200.0,
        gt=0,
        le=100_000,
        description="CoA-Requests per second sent after a layout edit, which touches every "
        "online session of the manufacturer.",
    )
    plan_rate: float = Field(
        default=2000.0,
        gt=0,
        le=100_000,
        description="CoA-Requests per second sent after a plan edit or at a plan's time-window "
        "boundary, which touch every online session of the plan's contracts.",
    )


class PoolSettings(_Section):
    offer_timeout: float = Field(
        default=120.0,
        ge=5,
        le=86400,
        description="Seconds an address leased at Access-Accept stays held for its "
        "Accounting-Start; then it is free again (the pool's lease_time applies once bound).",
    )


class SchedulerSettings(_Section):
    node_name: str = Field(
        default="",
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="This daemon's name in the shared job table (who runs a job, who holds "
        "its lock); unique per daemon. Empty: <hostname>:<pid>.",
    )


class Settings(BaseSettings):
    """Every key is optional; see config/radius-contracts.toml for the documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    timezone: str = Field(
        default="UTC",
        description="The ISP's time zone (IANA name, e.g. America/Sao_Paulo): contract start "
        "and end dates, quota periods and plan time windows follow its wall clock.",
    )
    database: DatabaseSettings = DatabaseSettings()
    radius: RadiusSettings = RadiusSettings()
    radsec: RadsecSettings = RadsecSettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()
    auth_log: AuthLogSettings = AuthLogSettings()
    accounting: AccountingSettings = AccountingSettings()
    coa: CoaSettings = CoaSettings()
    pools: PoolSettings = PoolSettings()
    scheduler: SchedulerSettings = SchedulerSettings()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"{value!r} is not a known time zone (e.g. UTC, Europe/Lisbon)"
            raise ValueError(message) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.state_dir / 'radius-contracts.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the TOML file (see load_settings); environment wins over the file.
        return env_settings, init_settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", field=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", field=str(path)) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (or $RADIUS_CONTRACTS_CONFIG), apply the environment, validate.

    Raises ConfigError naming the first bad key, e.g. ``radius.auth_port``.
    """
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    values: dict[str, Any] = _read_toml(config_file) if config_file else {}
    values.update(overrides)
    # The config-file variable shares our prefix but is not a setting.
    saved = os.environ.pop(CONFIG_ENV, None)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file), field=_key(exc)) from None
    finally:
        if saved is not None:
            os.environ[CONFIG_ENV] = saved


def _key(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or "<root>"


def _describe(exc: ValidationError, config_file: Path | None) -> str:
    source = f"config file {config_file}" if config_file else "defaults"
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "<root>"
        env = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        lines.append(f"{key}: {error['msg']} (from {source} or ${env})")
    return "invalid configuration: " + "; ".join(lines)
