"""One settings object for every Forewarn process, read from ``FOREWARN_*`` environment variables.

Nested groups use ``__`` as the delimiter: ``FOREWARN_DB__URL``, ``FOREWARN_MQTT__URL``, ``FOREWARN_API__PORT``.
An unset database URL means the embedded PostgreSQL; an unset broker URL means the embedded/local broker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from forewarn.contract import MIN_TS
from forewarn.errors import ConfigError

ENV_PREFIX = "FOREWARN_"


class DbSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded server"
    )
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=8, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    retention_days: int = Field(
        default=90, ge=1, description="readings older than this are dropped"
    )
    dead_letter_retention_days: int = Field(
        default=30, ge=1, description="dead letters received longer ago are pruned by maintain"
    )
    hour_rollup_retention_days: int = Field(
        default=365, ge=1, description="hour roll-ups are kept this long (at least retention_days)"
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        scheme = urlsplit(v.get_secret_value()).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return v


class MqttSettings(BaseModel):
    url: str | None = Field(
        default=None, description="mqtt://host:port or mqtts://; unset = embedded"
    )
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = "forewarn-ingest"
    topic_root: str = "forewarn/v1"
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError("must be mqtt://host:port or mqtts://host:port")
        if not parts.hostname:
            raise ValueError("has no host")
        _ = parts.port  # raises ValueError for a non-numeric port
        return v

    def host_port(self) -> tuple[str, int, bool]:
        """Host, port and TLS flag of the configured broker URL."""
        if self.url is None:
            raise ConfigError("FOREWARN_MQTT__URL", "no broker URL configured")
        parts = urlsplit(self.url)
        tls = parts.scheme == "mqtts"
        return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls


class IngestSettings(BaseModel):
    batch_size: int = Field(default=2000, ge=1)
    flush_interval_s: float = Field(default=0.2, gt=0)
    queue_max: int = Field(default=20000, ge=10, description="bounded queue; full = backpressure")
    auto_register: bool = Field(
        default=False, description="register unknown machines instead of rejecting"
    )
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    max_future_s: float = Field(
        default=300.0, ge=0, description="event times further ahead are out_of_range_timestamp"
    )
    min_timestamp: datetime = Field(
        default=MIN_TS, description="event times before this are out_of_range_timestamp"
    )
    dead_letter_excerpt_bytes: int = Field(
        default=64 * 1024, ge=64, description="bytes of a rejected payload kept (with size, sha256)"
    )
    reorder_window: int = Field(
        default=10_000,
        ge=0,
        description="a seq this far below the machine's newest is still stored (flagged reordered);"
        " further below it is stale_seq",
    )
    stall_after_s: float = Field(
        default=30.0, gt=0, description="/readyz fails when taken messages stay unsettled this long"
    )
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    shared_group: str | None = Field(default=None, description="MQTT shared-subscription group")

    @field_validator("min_timestamp")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


def _name_list(v: Any) -> Any:
    """A list setting is comma-separated text (``a,b``) or a JSON list."""
    if isinstance(v, str) and v.strip().startswith("["):
        return json.loads(v)
    if isinstance(v, str):
        return [part.strip() for part in v.split(",") if part.strip()]
    return v


class SparkplugSettings(BaseModel):
    groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sparkplug B group ids ingest subscribes to (spBv1.0/<group>/#); empty = off",
    )
    auto_register: bool = Field(
        default=False, description="register machines first seen in a birth certificate"
    )
    machine_id: str = Field(
        default="{device}",
        description="machine id of a device ({group}, {edge}, {device}; a node's own metrics use "
        "the edge id as {device})",
    )
    rebirth_interval_s: float = Field(
        default=5.0, ge=0, description="at most one rebirth request per edge node this often"
    )
    host_id: str | None = Field(
        default=None,
        description="host application id: ingest announces spBv1.0/STATE/<host_id> (retained)",
    )

    _split = field_validator("groups", mode="before")(_name_list)

    @field_validator("machine_id")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(group="g", edge="e", device="d")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"only {{group}}, {{edge}} and {{device}} may appear ({exc})"
            ) from None
        return v


class OpcuaSettings(BaseModel):
    endpoint: str | None = Field(default=None, description="opc.tcp://host:port/path")
    map_file: Path | None = Field(default=None, description="node map (TOML)")
    sampling_interval_ms: float = Field(default=500.0, gt=0)
    security_policy: Literal[
        "None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"
    ] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = Field(default=None, description="client certificate (PEM/DER)")
    private_key: Path | None = Field(default=None, description="client private key (PEM)")
    server_certificate: Path | None = Field(default=None, description="trusted server certificate")
    username: str | None = None
    password: SecretStr | None = None
    buffer_dir: Path | None = Field(
        default=None, description="on-disk outbox and sequence numbers (default state_dir/opcua)"
    )
    buffer_max: int = Field(
        default=1_000_000, ge=1, description="messages kept while the broker is unreachable"
    )
    client_id: str = Field(default="forewarn-opcua", description="MQTT client id")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="longest reconnect backoff")
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus /metrics (0 = off)"
    )

    @field_validator("endpoint")
    @classmethod
    def _opc_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if urlsplit(v).scheme != "opc.tcp" or not urlsplit(v).hostname:
            raise ValueError("must be opc.tcp://host:port")
        return v


class ImportSettings(BaseModel):
    batch_rows: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="rows per batch of a history import (one COPY and commit each; bounds memory)",
    )


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    rate_limit_per_min: int = Field(default=6000, ge=1)
    auth_rate_limit_per_min: int = Field(
        default=120, ge=1, description="key lookups (uncached keys) per client address a minute"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger request bodies are answered 413"
    )
    escalate_after_s: float = Field(default=3600.0, gt=0)


class ModelSettings(BaseModel):
    horizon_h: float = Field(default=48.0, gt=0, description="failure-within-horizon label")
    score_cadence_s: float = Field(default=5.0, gt=0)
    stream_cadence_s: float = Field(
        default=1.0, gt=0, description="seconds between streaming passes (every new reading)"
    )
    partitions: int = Field(
        default=16, ge=1, le=4096, description="machine partitions shared by scoring/alert workers"
    )
    lease_s: float = Field(
        default=10.0, gt=0, description="a dead worker's partitions are taken over after this"
    )
    alert_high: float = Field(default=0.6, gt=0, le=1)
    alert_low: float = Field(default=0.3, ge=0, lt=1)
    alert_k: int = Field(default=3, ge=1, description="consecutive high scores before an alert")
    stale_after_s: float = Field(
        default=3 * 3600.0, gt=0, description="predictions on inputs older than this raise no alert"
    )
    data_dir: Path | None = Field(
        default=None, description="public datasets (default ../shared/data)"
    )
    retrain_every_h: float = Field(
        default=24.0,
        gt=0,
        description="`forewarn retrain` trains a challenger when the newest version's data is this"
        " old (plant hours)",
    )


class NotifySettings(BaseModel):
    smtp_host: str | None = Field(default=None, description="SMTP server; unset = no e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = Field(default=None, description="extra CA bundle for the server")
    smtp_from: str = "forewarn@localhost"
    timeout_s: float = Field(default=10.0, gt=0, description="per SMTP or HTTP attempt")
    attempts: int = Field(default=4, ge=1, description="tries per notification")
    dashboard_url: str | None = Field(default=None, description="link target in messages")


class WebhookSettings(BaseModel):
    """Outbound HTTP to URLs users register (webhooks): see forewarn/egress.py."""

    allow_http: bool = Field(default=False, description="accept http:// destinations (else https)")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="host names, addresses or CIDR networks allowed although internal"
        ' (JSON list, e.g. ["127.0.0.1"])',
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="per delivery attempt")


class Settings(BaseSettings):
    """Effective configuration; build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    state_dir: Path = Field(
        default=Path(".forewarn"), description="embedded servers, models, caches"
    )
    factory: Path | None = Field(default=None, description="factory config (TOML); default ships")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    clock: Literal["plant", "wall"] = Field(
        default="plant",
        description="plant time: the newest reading (never ahead of the wall clock), or the wall clock",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="bind address of every service's unauthenticated /metrics, /healthz, /readyz",
    )
    db: DbSettings = DbSettings()
    mqtt: MqttSettings = MqttSettings()
    ingest: IngestSettings = IngestSettings()
    imports: ImportSettings = ImportSettings()
    api: ApiSettings = ApiSettings()
    sparkplug: SparkplugSettings = SparkplugSettings()
    opcua: OpcuaSettings = OpcuaSettings()
    models: ModelSettings = ModelSettings()
    notify: NotifySettings = NotifySettings()
    webhooks: WebhookSettings = WebhookSettings()


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(_env_name(err["loc"]), err["msg"]) from None


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def masked(settings: Settings) -> dict[str, Any]:
    """The configuration as plain data with secrets masked (for `forewarn config show`)."""
    data: dict[str, Any] = settings.model_dump(mode="json")  # SecretStr dumps as '**********'
    if settings.db.url is not None:
        data["db"]["url"] = _mask_url_password(settings.db.url.get_secret_value())
    if settings.mqtt.url is not None:
        data["mqtt"]["url"] = _mask_url_password(settings.mqtt.url)
    return data
