"""Typed settings: documented defaults in ``defaults.toml``, overridden by a file and the env."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
ENV_PREFIX = "CRM_"
# The settings load before any domain module (a fast CLI start), so the options type is
# imported where it is built.
if TYPE_CHECKING:
    from attribution.models.options import ModelOptions

KNOWN_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
    "markov",
    "shapley",
)


class SettingsError(ValueError):
    """A setting is invalid; the message names it and says what is expected."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSettings(_Section):
    """Where the broker is, and how every Kafka client authenticates to it (TLS, SASL)."""

    bootstrap_servers: str = ""
    cache_dir: str = ""
    kafka_version: str = "4.1.1"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    sasl_username: str = ""
    # SecretStr: its repr and str are masked, so printing the settings never shows it.
    sasl_password: SecretStr = SecretStr("")
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    @property
    def uses_sasl(self) -> bool:
        """True when the clients authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """True when the clients connect over TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        # Each of these is a configuration that a client would either reject with a cryptic
        # error deep in a connection attempt, or accept and silently ignore (credentials set
        # but never sent): refused at load, with the setting to change.
        protocol = self.security_protocol
        if self.uses_sasl:
            if not self.sasl_mechanism:
                raise ValueError(
                    f"security_protocol {protocol} needs sasl_mechanism "
                    f"({', '.join(SASL_MECHANISMS)})"
                )
            if not self.sasl_username:
                raise ValueError(f"security_protocol {protocol} needs sasl_username")
            if not self.sasl_password.get_secret_value():
                raise ValueError(
                    f"security_protocol {protocol} needs sasl_password "
                    "(set CRM_KAFKA__SASL_PASSWORD rather than writing it in a file)"
                )
        else:
            given = [
                name for name in ("sasl_mechanism", "sasl_username") if getattr(self, name)
            ] + (["sasl_password"] if self.sasl_password.get_secret_value() else [])
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but security_protocol {protocol} does not use SASL "
                    "(SASL_SSL or SASL_PLAINTEXT do)"
                )
        if not self.uses_tls:
            given = [n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, n)]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but security_protocol {protocol} does not use TLS "
                    "(SSL or SASL_SSL do)"
                )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate it signs)")
        return self


class TopicSettings(_Section):
    """Topic names and partitions."""

    touchpoints: str = Field("crm-touchpoints", min_length=1)
    purchases: str = Field("crm-purchases", min_length=1)
    costs: str = Field("crm-costs", min_length=1)
    assignments: str = Field("crm-assignments", min_length=1)
    dead_letter: str = Field("crm-dead-letter", min_length=1)
    attributions: str = Field("crm-attributions", min_length=1)
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)
    partitioner: Literal["any", "murmur2", "crc32"] = "any"


class AttributionSettings(_Section):
    """Journey windows and model options."""

    channels: list[str] = Field(default_factory=list)
    crm_channels: list[str] = Field(default_factory=list)
    direct_channel: str = "direct"
    lookback_days: float = Field(30.0, gt=0)
    journey_timeout_days: float = Field(0.0, ge=0)
    allowed_lateness_hours: float = Field(1.0, ge=0)
    half_life_days: float = Field(7.0, gt=0)
    models: list[str] = Field(default_factory=lambda: list(KNOWN_MODELS))
    markov_order: int = Field(1, ge=1, le=6)
    markov_states: Literal["merged", "raw"] = "merged"
    markov_refresh_seconds: float = Field(60.0, gt=0)
    credit_intervals: bool = False

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in KNOWN_MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(KNOWN_MODELS)}")
        return value

    @property
    def timeout_days(self) -> float:
        """Journey timeout in days (the lookback when unset)."""
        return self.journey_timeout_days or self.lookback_days

    @property
    def model_options(self) -> ModelOptions:
        """The models' options these settings give (no step limit: that is a command option)."""
        from attribution.models.options import ModelOptions

        return ModelOptions(
            order=self.markov_order,
            direct_channel=self.direct_channel,
            half_life_days=self.half_life_days,
            markov_states=self.markov_states,
        )


class AnalyticsSettings(_Section):
    """Customer analytics options."""

    rfm_window_days: float = Field(365.0, gt=0)
    rfm_snapshot_seconds: float = Field(86400.0, gt=0)
    holdout_from_hash: bool = False
    holdout_salt: str = "crm-attribution"
    holdout_control_share: float = Field(0.05, gt=0, lt=1)
    clv_horizon_weeks: float = Field(52.0, gt=0)
    rebuild_cpu_share: float = Field(0.03, gt=0, le=1)


class BusinessSettings(_Section):
    """Money and calendar: base currency, exchange rates, business time zone."""

    base_currency: str = Field("EUR", min_length=1)
    rates_file: str = ""
    time_zone: str = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value)


def check_time_zone(value: str) -> str:
    """``value`` if it names an IANA time zone; a ValueError that says so otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {value!r} is not an IANA time zone (e.g. UTC, Europe/Paris)"
        ) from None
    return value


class ValidationSettings(_Section):
    """Bounds of every record (attribution/limits.py): larger or outside is invalid."""

    max_amount: float = Field(1e12, gt=0, le=1e15)
    min_time: str = "1970-01-01T00:00:00Z"
    max_time: str = "2100-01-01T00:00:00Z"

    @field_validator("min_time", "max_time")
    @classmethod
    def _time(cls, value: str) -> str:
        from attribution.events import parse_timestamp

        parse_timestamp(value)
        return value


class WorkerSettings(_Section):
    """Faust worker options."""

    app_id: str = Field("crm-attribution", min_length=1)
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    store: str = "memory://"
    processing_guarantee: str = "exactly_once"
    transaction_timeout_seconds: float = Field(30.0, ge=1, le=900)
    data_dir: str = ""
    json_logs: bool = False
    log_level: str = "info"
    shutdown_timeout_seconds: float = Field(30.0, gt=0)
    batch_events: int = Field(2000, ge=1, le=100_000)
    backlog_records: int = Field(500, ge=1, le=10_000_000)
    batch_seconds: float = Field(0.05, gt=0, le=60)
    full_gc_seconds: float = Field(300.0, gt=0)
    rocksdb_block_cache_mb: float = Field(8.0, gt=0)
    rocksdb_write_buffer_mb: float = Field(4.0, gt=0)
    fetch_max_kb_per_partition: int = Field(1024, ge=1, le=65_536)
    fetch_max_wait_ms: int = Field(100, ge=1, le=30_000)

    @field_validator("processing_guarantee")
    @classmethod
    def _guarantee(cls, value: str) -> str:
        # exactly_once is the worker's own Kafka transactions (stream/kafka/transactions.py);
        # Faust itself always runs at_least_once (its exactly_once crashes on table writes).
        if value not in ("exactly_once", "at_least_once"):
            raise ValueError("processing_guarantee must be exactly_once or at_least_once")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if not (value.startswith("memory://") or value.startswith("rocksdb://")):
            raise ValueError("store must be memory:// or rocksdb://")
        return value


class ApiSettings(_Section):
    """Who may ask the worker's HTTP API, and how often (stream/api/access.py)."""

    # SecretStr: a settings object printed or logged shows '**********', never the value.
    token: SecretStr = SecretStr("")
    token_file: str = ""
    internal_secret: SecretStr = SecretStr("")
    metrics: Literal["open", "token"] = "open"
    requests_per_minute: int = Field(600, ge=0)
    burst: int = Field(60, ge=1)


class Settings(_Section):
    """All settings of crm-attribution."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    business: BusinessSettings = Field(default_factory=BusinessSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, field = name[len(ENV_PREFIX) :].lower().partition("__")
        section_model = Settings.model_fields.get(section)
        if section_model is None:
            raise SettingsError(f"{name}: unknown settings section '{section}'")
        field_info = section_model.annotation.model_fields.get(field)  # type: ignore[union-attr]
        if field_info is None:
            raise SettingsError(f"{name}: unknown setting '{section}.{field}'")
        value: Any = raw
        if field_info.annotation == list[str]:
            value = [item.strip() for item in raw.split(",") if item.strip()]
        out.setdefault(section, {})[field] = value
    bootstrap = environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap and "bootstrap_servers" not in out.get("kafka", {}):
        out.setdefault("kafka", {})["bootstrap_servers"] = bootstrap
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path} is not valid TOML: {error}") from None


def load_settings(
    config_file: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Defaults, then the config file (argument or CRM_CONFIG_FILE), then the environment."""
    env = dict(os.environ if environ is None else environ)
    data = _read_toml(DEFAULTS_FILE)
    file_name = config_file or env.get("CRM_CONFIG_FILE")
    if file_name:
        data = _merge(data, _read_toml(Path(file_name)))
    data = _merge(data, _env_overrides(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            where = ".".join(str(p) for p in item["loc"])
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
