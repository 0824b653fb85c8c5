"""Settings from ``MODERATION_*`` environment variables, in groups, validated; read only by ``bootstrap``.

Each group reads the same flat variable names the README documents; lists are real lists (written
comma-separated in the environment). Unsafe values and combinations are refused rather than
tolerated: the fallback decision may never be ``allow``, callbacks may not go out unsigned.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from moderation_service.callbacks import parse_allowed_origin
from moderation_service.core.options import ClassifierOptions, PipelineOptions, default_rules_dir

__all__ = [
    "ApiSettings",
    "CoralSettings",
    "ModelSettings",
    "PipelineSettings",
    "QueueSettings",
    "RedisSettings",
    "RulesSettings",
    "Settings",
    "WebhookSettings",
]

_PLACEHOLDERS = {"changethis", "changeme", "secret", "password"}
MIN_SECRET_BYTES = 32  # HMAC-SHA256: a key shorter than the hash weakens it


def _comma_list(value: Any) -> Any:
    """``"a, b"`` from the environment; a list passed in code stays as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _group(prefix: str = "MODERATION_") -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True, frozen=True)


class PipelineSettings(PipelineOptions, BaseSettings):
    model_config = _group()


class ModelSettings(ClassifierOptions, BaseSettings):
    model_config = _group()

    classifiers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["embedded"], description="classifier names or module:factory; empty for rules only"
    )
    classifier_threads: int = Field(
        default=16, ge=1, le=256, description="most model runner threads in a process (never more than cores ÷ model threads)"
    )
    runner_nice: int = Field(
        default=10, ge=0, le=19, description="model runner threads run this much below the process's priority (Linux): answers first"
    )

    @field_validator("classifiers", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    def options(self) -> ClassifierOptions:
        """The part classifier factories see (not the whole settings)."""
        return ClassifierOptions(**self.model_dump(include=set(ClassifierOptions.model_fields)))


class RulesSettings(BaseSettings):
    model_config = _group()

    rules_dir: Path = Field(default_factory=default_rules_dir)
    default_rulebook: str = "peer-support"


class ApiSettings(BaseSettings):
    model_config = _group()

    api_keys_file: Path | None = None
    api_keys: str = Field(default="", description="hashed key lines, newline-separated")
    max_batch: int = Field(default=64, ge=1, le=1000)
    max_body_bytes: int = Field(default=8 << 20, ge=1024)
    body_read_timeout_s: float = Field(default=30.0, gt=0, description="a client that stops sending its body this long gets 408")
    max_submission_batch: int = Field(default=500, ge=1, le=5000)
    console_idle_timeout_s: int = Field(default=1800, ge=60, description="a console session unused this long signs out")
    console_max_age_s: int = Field(default=12 * 3600, ge=300, description="a console session ends this long after sign-in")


class RedisSettings(BaseSettings):
    model_config = _group("MODERATION_REDIS_")

    url: str | None = Field(default=None, description="redis://host:port/db; unset: no queue routes")
    sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list, description="host:port of Redis Sentinels (overrides url)")
    sentinel_service: str = "mymaster"

    @field_validator("sentinels", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("sentinels")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"a sentinel must be host:port, got {entry!r}")
        return value


class QueueSettings(BaseSettings):
    model_config = _group()

    queue_name: str = Field(default="moderation", pattern=r"^[a-z0-9_\-]+$")
    text_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="how long submitted text is kept")
    aof_rewrite_interval_s: int = Field(
        default=3600, ge=0, description="how often a worker has Redis rewrite its AOF, so expired text leaves the disk (0: never)"
    )
    record_ttl_s: int = Field(default=180 * 24 * 3600, ge=3600, description="how long decision records (no text) are kept")
    job_lease_s: float = Field(default=60.0, gt=0, description="a running job not finished by then is re-queued")
    max_attempts: int = Field(default=3, ge=1, le=20)
    requeue_stale_after_s: float = Field(default=120.0, gt=0, description="a queued submission not started by then is re-queued")
    reaper_interval_s: float = Field(default=1.0, gt=0)
    worker_class: Literal["simple", "fork"] = Field(default="simple", description="simple: jobs run in the preloaded process")
    worker_stop_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="after SIGTERM, a job still running this long is released to another worker"
    )
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535, description="serve a worker's /metrics here")
    worker_metrics_host: str = Field(default="127.0.0.1", description="address the worker's /metrics binds (loopback unless opened)")

    @property
    def webhook_queue_name(self) -> str:
        return f"{self.queue_name}-webhooks"

    @model_validator(mode="after")
    def _retention_outlives_text(self) -> QueueSettings:
        if self.record_ttl_s < self.text_ttl_s:
            raise ValueError("record_ttl_s must be at least text_ttl_s: a decision may not vanish before its post's text")
        return self


class WebhookSettings(BaseSettings):
    model_config = _group("MODERATION_WEBHOOK_")

    secret: str = Field(default="", description="HMAC-SHA256 key for X-Moderation-Signature, at least 32 bytes")
    previous_secret: str = Field(default="", description="during a rotation: the old key, also signed with until receivers switch")
    callback_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("callback_allowed_hosts", "MODERATION_CALLBACK_ALLOWED_HOSTS"),
        description="origins callbacks may go to: host (https, port 443), https://*.domain, http://host:port",
    )
    callback_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("callback_allowed_networks", "MODERATION_CALLBACK_ALLOWED_NETWORKS"),
        description="private/loopback networks callbacks may resolve to (CIDR); none by default",
    )
    max_attempts: int = Field(default=8, ge=1, le=30)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        value = _comma_list(value)
        return [str(parse_allowed_origin(str(entry))) for entry in value] if isinstance(value, list) else value

    @field_validator("callback_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("secret", "previous_secret")
    @classmethod
    def _secret_strong(cls, value: str, info: ValidationInfo) -> str:
        if value and (len(value.encode()) < MIN_SECRET_BYTES or value.lower() in _PLACEHOLDERS):
            name = f"MODERATION_WEBHOOK_{(info.field_name or 'secret').upper()}"
            raise ValueError(f"{name} must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`) and not a placeholder")
        return value

    @model_validator(mode="after")
    def _safe(self) -> WebhookSettings:
        if self.callback_allowed_hosts and not self.secret:
            raise ValueError("MODERATION_CALLBACK_ALLOWED_HOSTS needs MODERATION_WEBHOOK_SECRET: callbacks may not go out unsigned")
        if self.previous_secret and not self.secret:
            raise ValueError("MODERATION_WEBHOOK_PREVIOUS_SECRET needs MODERATION_WEBHOOK_SECRET (the new key)")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("webhook_backoff_max_s must be at least webhook_backoff_base_s")
        return self

    @property
    def signing_secrets(self) -> list[str]:
        """Every key a webhook is signed with: the current one first, then the previous one during a rotation."""
        return [key for key in (self.secret, self.previous_secret) if key]


class CoralSettings(BaseSettings):
    model_config = _group("MODERATION_CORAL_")

    secrets: dict[str, list[str]] = Field(default_factory=dict, description='JSON: {"<tenantID>": ["<secret>", "<previous secret>"]}')
    rulebook: str | None = Field(default=None, description="rulebook for Coral comments (default: the default rulebook)")
    timeout_ms: int = Field(default=200, ge=100, le=10_000, description="the phase timeout set in Coral's admin (Coral's default: 200)")
    timeouts_ms: dict[str, Annotated[int, Field(ge=100, le=10_000)]] = Field(
        default_factory=dict, description='JSON: {"<tenantID>": <ms>} for tenants whose phase timeout is not timeout_ms'
    )
    body_format: Literal["HTML", "PLAIN_TEXT"] = Field(default="HTML", description="the phase's body format in Coral's admin")

    def budget_ms(self, tenant_id: str) -> int:
        """How long Coral waits for this tenant's answer before it publishes the comment unmoderated."""
        return self.timeouts_ms.get(tenant_id, self.timeout_ms)


class Settings(BaseSettings):
    """Every group; ``Settings()`` reads the environment, ``Settings(queue=QueueSettings(...))`` overrides a group."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore", frozen=True)

    log_level: str = "INFO"
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    coral: CoralSettings = Field(default_factory=CoralSettings)

    @model_validator(mode="after")
    def _queue_outlasts_lease(self) -> Settings:
        if self.queue.requeue_stale_after_s < self.queue.reaper_interval_s:
            raise ValueError("requeue_stale_after_s must be at least reaper_interval_s")
        return self
