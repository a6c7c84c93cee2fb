"""Typed configuration: an optional ``alephant.yaml`` plus ``ALEPHANT_*`` environment variables.

Precedence, highest first: environment (``ALEPHANT_PORT``, ``ALEPHANT_LOG__BATCH_SIZE`` for nested keys),
then the YAML file, then the defaults below. Provider API keys are never written in the file: a provider row
names the environment variable that holds its key (``OPENAI_API_KEY`` by default for OpenAI).

A bad file is reported as ``ConfigError`` with the file, the key path, the bad value and what was expected,
so the CLI can print one readable line per problem instead of a traceback.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from providers.registry import ADAPTERS

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATA_DIR",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "ArchiveSettings",
    "ConfigError",
    "CustomProvider",
    "DeploymentConfig",
    "FailureClass",
    "HealthSettings",
    "LimitsSettings",
    "LogSettings",
    "ModelGroup",
    "ModelPrice",
    "OtelSettings",
    "PaidEndpointConfig",
    "PaidPath",
    "PaymentsSettings",
    "RetrySettings",
    "RouterConfig",
    "Settings",
    "SinkConfig",
    "Strategy",
    "UpstreamSettings",
    "load_settings",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_DATA_DIR = Path(".alephant")
DEFAULT_CONFIG_FILE = Path("alephant.yaml")
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UpstreamSettings(_Frozen):
    """Timeouts and pooling for upstream HTTP (aiohttp)."""

    connect_timeout: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=600.0, gt=0, description="total seconds for a non-streamed call")
    stream_idle_timeout: float = Field(default=120.0, gt=0, description="max seconds between two stream chunks")
    pool_size: int = Field(default=512, ge=1)


class LogSettings(_Frozen):
    """The request-log queue and batch writer."""

    queue_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=500, ge=1)
    # A partial batch's wait. Each batch is converted and sent in one go on the event loop's thread, so shorter
    # waits mean smaller bursts: at a fixed 1,000 req/s, 0.05 s put the p99 ~1 ms below 0.2 s (bench/RESULTS.md).
    flush_interval: float = Field(default=0.05, gt=0, description="seconds a partial batch of log rows waits")
    retention_days: int | None = Field(
        default=None, ge=1, description="delete request-log rows and spans older than this; kept forever when unset"
    )
    retention_interval: float = Field(default=3600.0, gt=0, description="seconds between retention passes")


class RetrySettings(_Frozen):
    """Retries and fallbacks: how many attempts a call may make and for how long, and how long to back off.

    ``Alephant-Max-Attempts`` and ``Alephant-Deadline-Ms`` request headers may change the first two per request,
    up to ``max_attempts_limit`` and ``max_deadline_ms``.
    """

    max_attempts: int = Field(default=3, ge=1, le=100, description="attempts of a router call, fallbacks included")
    direct_max_attempts: int = Field(default=1, ge=1, le=100, description="attempts of a call without a router")
    max_attempts_limit: int = Field(default=10, ge=1, le=100, description="highest Alephant-Max-Attempts")
    deadline_ms: int = Field(default=120_000, ge=1, description="total time of a call, every attempt included")
    max_deadline_ms: int = Field(default=600_000, ge=1, description="highest Alephant-Deadline-Ms")
    backoff_base_ms: float = Field(default=100.0, ge=0, description="first backoff ceiling (full jitter)")
    backoff_max_ms: float = Field(default=5_000.0, ge=0)
    max_retry_wait_ms: float = Field(default=20_000.0, ge=0, description="longest retry-after the gateway waits out")


class HealthSettings(_Frozen):
    """The passive circuit breaker, the 429 cooldown and the latency average each deployment keeps."""

    window_seconds: float = Field(default=30.0, gt=0, description="the error ratio is taken over this window")
    min_requests: int = Field(default=5, ge=1, description="fewer outcomes in the window never open the circuit")
    error_ratio: float = Field(default=0.5, gt=0, le=1, description="failures / outcomes that open the circuit")
    open_seconds: float = Field(default=10.0, gt=0, description="time open before half-open probes")
    half_open_probes: int = Field(default=1, ge=1, description="concurrent probe requests when half-open")
    cooldown_ms: float = Field(default=1_000.0, ge=0, description="cooldown after a 429 that names no reset")
    latency_alpha: float = Field(default=0.3, gt=0, le=1, description="weight of the newest latency in the EWMA")
    probe_interval: float | None = Field(
        default=None, gt=0, description="seconds between active probes of router deployments; off when unset"
    )
    probe_timeout: float = Field(default=5.0, gt=0, description="seconds an active probe may take")


Strategy = Literal["weighted", "round-robin", "least-busy", "lowest-latency", "cheapest", "ordered"]
FailureClass = Literal[
    "rate_limit", "server_error", "timeout", "unavailable", "context_window", "content_policy", "default"
]


class DeploymentConfig(_Frozen):
    """One place a router can send a call: a ``provider/model``, optionally with its own key (pool) and limit."""

    model: str = Field(description="provider/model")
    id: str | None = Field(default=None, description="name in health and logs; default provider/model")
    weight: float = Field(default=1.0, gt=0, description="share under the weighted strategy")
    priority: int = Field(default=0, description="order under the ordered strategy (lowest first)")
    api_key_env: str | None = Field(default=None, description="this deployment's key instead of the provider's")
    api_key_envs: tuple[str, ...] = Field(default=(), description="this deployment's key pool")
    max_in_flight: int | None = Field(default=None, ge=1, description="concurrent calls above which it is skipped")
    rpm: int | None = Field(default=None, ge=1, description="requests a minute above which it is skipped")
    tpm: int | None = Field(default=None, ge=1, description="tokens a minute above which it is skipped")

    @field_validator("model")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if "/" not in value:
            raise ValueError("expected provider/model, such as openai/gpt-4o")
        return value


class ModelGroup(_Frozen):
    """The deployments one model name maps to in a router, and where to go when they fail."""

    deployments: tuple[DeploymentConfig, ...] = Field(min_length=1)
    strategy: Strategy | None = Field(default=None, description="this group's strategy instead of the router's")
    fallbacks: dict[FailureClass, str] = Field(
        default_factory=dict, description="failure class -> another group of this router, or a provider/model"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # ``gpt-4o: [openai/gpt-4o, {model: azure/gpt-4o, weight: 2}]`` is a group of deployments.
        if isinstance(value, list | tuple):
            value = {"deployments": value}
        if isinstance(value, dict) and isinstance(value.get("deployments"), list | tuple):
            value = {
                **value,
                "deployments": [{"model": d} if isinstance(d, str) else d for d in value["deployments"]],
            }
        return value


class RouterConfig(_Frozen):
    """A router (``/router/{id}/v1/...``): model names mapped to deployment groups, and a strategy."""

    strategy: Strategy = "weighted"
    models: dict[str, ModelGroup] = Field(min_length=1, description="model name -> group ('*' matches any)")

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> RouterConfig:
        for name, group in self.models.items():
            for failure, target in group.fallbacks.items():
                if target not in self.models and "/" not in target:
                    raise ValueError(
                        f"models.{name}.fallbacks.{failure}: {target!r} is neither a group of this router "
                        "nor a provider/model"
                    )
        return self


class ModelPrice(_Frozen):
    """USD per million tokens, as decimal text or numbers (converted exactly, never through float)."""

    input_mtok: Decimal = Decimal(0)
    output_mtok: Decimal = Decimal(0)
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None


class CustomProvider(_Frozen):
    """A backend added by configuration: OpenAI-compatible by default (vLLM, LM Studio, a company proxy),
    or any adapter (``ollama``, ``azure``, ``anthropic``...) pointed at a private base URL."""

    base_url: str
    adapter: str = "openai"
    api_key_env: str | None = Field(default=None, description="environment variable that holds the key")
    api_key_envs: tuple[str, ...] = Field(
        default=(), description="several keys of this provider (a pool), rotated on 429; first is the default"
    )
    models: tuple[str, ...] = ()
    embedding_models: tuple[str, ...] = ()
    options: dict[str, str] = Field(default_factory=dict, description="adapter options, e.g. api_version")
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="model -> price per 1M tokens")

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"expected one of {', '.join(sorted(ADAPTERS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, such as http://127.0.0.1:8000/v1")
        return value.rstrip("/")


class LimitsSettings(_Frozen):
    """Budgets, rate and concurrency limits: the backend's behaviour (the rules themselves are in the store)."""

    redis_prefix: str = Field(default="alephant:", description="prefix of every Redis key the limits use")
    on_backend_error: Literal["open", "closed"] = Field(
        default="closed", description="Redis unreachable: refuse governed calls (closed) or let them through (open)"
    )
    lease_ttl: float = Field(
        default=30.0, gt=0, description="seconds a crashed replica's reservations and concurrency slots outlive it"
    )
    default_max_output_tokens: int = Field(
        default=4096, ge=1, description="output tokens reserved when a call sets no max_tokens (capped by the model)"
    )
    bytes_per_prompt_token: int = Field(
        default=2, ge=1, description="prompt tokens are estimated as body bytes / this before the call"
    )


# The gateway's own routes: a paid endpoint there would put a price on every call to them (it is matched first).
RESERVED_PATHS = ("/v1", "/ai", "/router", "/admin", "/health", "/mcp", "/metrics")


def _paid_path(path: str) -> str:
    reserved = next((p for p in RESERVED_PATHS if path == p or path.startswith(p + "/")), None)
    if path == "/" or reserved is not None:
        raise ValueError(
            f"{path} is one of the gateway's own routes ({reserved or '/'}); put paid endpoints elsewhere, "
            "e.g. /paid/weather"
        )
    return path


PaidPath = Annotated[str, Field(pattern=r"^/"), AfterValidator(_paid_path)]


class PaidEndpointConfig(_Frozen):
    """A paid endpoint: callers pay ``price_usd`` per call (x402 or MPP) to reach ``target``."""

    path: PaidPath = Field(description="the gateway path it answers, e.g. /paid/weather")
    target: str = Field(description="an upstream http(s) URL, or model:provider/model")
    price_usd: Decimal = Field(gt=0, description="per call, decimal USD text")
    network: str = Field(default="eip155:84532", description="CAIP-2 chain id")
    asset: str | None = Field(default=None, description="token address; default the network's USDC")
    pay_to: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    description: str = ""


class PaymentsSettings(_Frozen):
    """Settlement for paid endpoints and the policy of agents' outbound payments."""

    facilitator_url: str | None = Field(default=None, description="an x402 facilitator; unset: the local one")
    local_networks: tuple[str, ...] = ("eip155:84532",)
    local_initial_balance_usd: Decimal = Field(default=Decimal(100), ge=0, description="local chain faucet")
    serve_local_facilitator: bool = Field(
        default=False, description="serve the local facilitator at /v1/payments/facilitator (other local services)"
    )
    max_price_usd: Decimal = Field(default=Decimal(1), gt=0, description="ceiling of one outbound payment")
    allowed_origins: tuple[str, ...] = Field(default=(), description="scheme://host[:port] agents may pay; empty: any")
    allowed_networks: tuple[str, ...] = ()
    allowed_assets: tuple[str, ...] = ()
    allowed_recipients: tuple[str, ...] = ()


class OtelSettings(_Frozen):
    """OpenTelemetry traces over OTLP/HTTP: one span per request, one child per upstream attempt. Off unless an
    endpoint is set here or in the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``)."""

    endpoint: str | None = Field(default=None, description="collector base URL, e.g. http://otel:4318")
    service_name: str = "alephant"
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="sent with every export (auth)")
    queue_size: int = Field(default=10_000, ge=1, description="finished calls waiting to become spans")


class ArchiveSettings(_Frozen):
    """Request and response bodies kept per request, for the workspaces that opt in (``["*"]``: every one).

    Written off the request path to S3-compatible storage when ``s3_bucket`` is set (credentials from the
    standard AWS environment or profile), else under ``directory`` (default ``data_dir/archive``).
    """

    workspaces: tuple[str, ...] = Field(default=(), description="workspace ids whose bodies are kept; '*' for all")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(default=None, description="an S3-compatible server (MinIO, Ceph...)")
    s3_region: str | None = None
    prefix: str = Field(default="", description="object key prefix, e.g. bodies/")
    directory: Path | None = Field(default=None, description="local archive directory when no bucket is set")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="each body is cut at this size")
    queue_size: int = Field(default=1_000, ge=1, description="calls waiting to be archived; more are not archived")


class SinkConfig(_Frozen):
    """A webhook that receives request-log rows as JSON arrays, in order, spooled on disk while it is down."""

    url: str
    name: str | None = Field(default=None, description="spool directory name; default derived from the URL")
    batch_size: int = Field(default=100, ge=1, le=10_000)
    flush_interval: float = Field(default=1.0, gt=0, description="seconds a partial batch waits")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="sent with every batch (auth)")
    timeout: float = Field(default=10.0, gt=0, description="seconds one delivery may take")
    max_backoff: float = Field(default=30.0, gt=0, description="longest wait between retries")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, such as https://logs.example.com/ingest")
        return value


class MockSettings(_Frozen):
    """The built-in offline ``mock`` provider."""

    latency_ms: float = Field(default=0.0, ge=0)
    chunk_delay_ms: float = Field(default=0.0, ge=0)


class Settings(BaseSettings):
    """Every setting of the gateway. Frozen: services read it once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="ALEPHANT_", env_nested_delimiter="__", frozen=True, extra="forbid", populate_by_name=True
    )

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None, description="postgresql://... for production; default is SQLite under data_dir"
    )
    master_key: SecretStr | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    key_refresh_interval: float = Field(default=1.0, gt=0, description="seconds between key snapshot checks")
    upstream: UpstreamSettings = UpstreamSettings()
    log: LogSettings = LogSettings()
    mock: MockSettings = MockSettings()
    providers: dict[str, CustomProvider] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict, description="alias -> provider/model")
    retries: RetrySettings = RetrySettings()
    health: HealthSettings = HealthSettings()
    routers: dict[str, RouterConfig] = Field(default_factory=dict, description="router id -> router")
    redis_url: SecretStr | None = Field(
        default=None, description="redis://host:6379/0: shared limits across workers and replicas (ALEPHANT_REDIS_URL)"
    )
    limits: LimitsSettings = LimitsSettings()
    payments: PaymentsSettings = PaymentsSettings()
    paid_endpoints: dict[str, PaidEndpointConfig] = Field(default_factory=dict, description="id -> paid endpoint")
    otel: OtelSettings = OtelSettings()
    archive: ArchiveSettings = ArchiveSettings()
    sinks: tuple[SinkConfig, ...] = ()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from .limits.resp import parse_url  # the limiter's client decides what it can connect to

            parse_url(value.get_secret_value())  # its errors never quote the URL, which may hold a password
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("expected sqlite:///path/file.db or postgresql://user@host:5432/db")
        return value

    @field_validator("aliases")
    @classmethod
    def _alias_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, target in value.items():
            if "/" not in target:
                raise ValueError(f"alias {alias!r} must point at provider/model, got {target!r}")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'alephant.db').as_posix()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the YAML file's values) below the environment, so ALEPHANT_* overrides the file.
        return env_settings, init_settings


class ConfigError(Exception):
    """A configuration problem, already phrased for a person: one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}invalid YAML: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"expected a mapping of settings at the top level, got {type(data).__name__}"])
    return data


_SECRET_NAMES = re.compile(r"key|secret|password|token|headers", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def _shown(value: Any, path: str) -> str:
    """The rejected value as an error may quote it: never a secret, nor a URL's user and password."""
    if isinstance(value, dict | list):
        return type(value).__name__
    if _SECRET_NAMES.search(path) or isinstance(value, SecretStr):
        return "(hidden)"
    if isinstance(value, str):
        return repr(_URL_CREDENTIALS.sub("***@", value))
    return repr(value)


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown setting (check the spelling; see README 'Configuration')"
    if error["type"] == "missing":
        return f"{path}: required setting is missing"
    reason = message[0].lower() + message[1:] if message else "invalid"
    return f"{path}: got {_shown(error.get('input'), path)}, {reason}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the file (explicit, ``ALEPHANT_CONFIG``, or ``./alephant.yaml`` if present).

    ``overrides`` (from CLI flags) win over everything.
    """
    explicit = config_file or (Path(os.environ["ALEPHANT_CONFIG"]) if os.environ.get("ALEPHANT_CONFIG") else None)
    path = explicit or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    data = _read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "environment"
    try:
        settings = Settings(**data)
        if overrides:
            settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(source, [_describe(dict(e)) for e in exc.errors()]) from None
    return settings
