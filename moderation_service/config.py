"""Settings from ``MODERATION_*`` environment variables, validated; built by the app factory.

Unsafe values are refused rather than tolerated: the fallback decision may never be ``allow``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from moderation_service.decision import Action

__all__ = ["Settings", "default_rules_dir"]


def default_rules_dir() -> Path:
    """The ``rules/`` folder shipped beside the package (repository checkout or image)."""
    return Path(__file__).resolve().parent.parent / "rules"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore")

    rules_dir: Path = Field(default_factory=default_rules_dir)
    default_rulebook: str = "peer-support"
    default_locale: str = "en-GB"
    max_text_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    max_batch: int = Field(default=64, ge=1, le=1000)
    max_body_bytes: int = Field(default=8 << 20, ge=1024)
    classifiers: str = Field(default="embedded", description="comma-separated classifier names; empty for rules only")
    classifier_timeout_s: float | None = Field(default=2.0, gt=0, description="model time budget per post; unset: no limit")
    classifier_timeout_per_kchar_s: float = Field(default=0.25, ge=0, description="added to the budget per 1,000 characters")
    classifier_threads: int = Field(default=16, ge=1, le=256)
    model_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime intra-op threads per model")
    fallback_action: Action = Action.hold
    api_keys_file: Path | None = None
    api_keys: str = Field(default="", description="hashed key lines, newline-separated")
    models_dir: Path = Field(default_factory=lambda: default_rules_dir().parent / "models")
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "moderation-service")
    detoxify_checkpoint: Path | None = None
    detoxify_config_dir: Path | None = Field(default=None, description="local folder with the checkpoint's HF config + tokenizer")
    log_level: str = "INFO"

    # Queue, store and webhooks (Redis).
    redis_url: str | None = Field(default=None, description="redis://host:port/db; unset: no queue routes")
    redis_sentinels: str = Field(default="", description="host:port,host:port of Redis Sentinels (overrides redis_url)")
    redis_sentinel_service: str = "mymaster"
    queue_name: str = "moderation"
    text_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="how long submitted text is kept")
    record_ttl_s: int = Field(default=180 * 24 * 3600, ge=3600, description="how long decision records (no text) are kept")
    job_lease_s: float = Field(default=60.0, gt=0, description="a running job not finished by then is re-queued")
    max_attempts: int = Field(default=3, ge=1, le=20)
    requeue_stale_after_s: float = Field(default=120.0, gt=0, description="a queued submission not started by then is re-queued")
    reaper_interval_s: float = Field(default=1.0, gt=0)
    worker_class: str = Field(default="simple", pattern="^(simple|fork)$", description="simple: jobs run in the preloaded process")
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535, description="serve a worker's /metrics here")
    max_submission_batch: int = Field(default=500, ge=1, le=5000)
    webhook_secret: str = Field(default="", description="HMAC-SHA256 key for X-Moderation-Signature")
    callback_allowed_hosts: str = Field(default="", description="comma-separated host names (or *.domain) callbacks may go to")
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_backoff_base_s: float = Field(default=2.0, gt=0)
    webhook_backoff_max_s: float = Field(default=600.0, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)

    # Coral external moderation phase.
    coral_secrets: dict[str, list[str]] = Field(
        default_factory=dict, description='JSON: {"<tenantID>": ["<signing secret>", "<previous secret>"]}'
    )
    coral_rulebook: str | None = Field(default=None, description="rulebook for Coral comments (default: the default rulebook)")
    coral_withhold_staff: bool = Field(default=False, description="apply hold/escalate to STAFF, MODERATOR and ADMIN authors")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_placeholder(cls, value: str) -> str:
        if value and (len(value) < 16 or value.lower() in {"changethis", "changeme", "secret", "password"}):
            raise ValueError("webhook_secret must be at least 16 characters and not a placeholder")
        return value

    @property
    def allowed_callback_hosts(self) -> list[str]:
        return [h.strip().lower() for h in self.callback_allowed_hosts.split(",") if h.strip()]

    @field_validator("fallback_action")
    @classmethod
    def _fallback_is_safe(cls, value: Action) -> Action:
        if value is Action.allow:
            raise ValueError("fallback_action must be hold or escalate: a failed check may not publish a post unseen")
        return value

    @property
    def classifier_names(self) -> list[str]:
        return [name.strip() for name in self.classifiers.split(",") if name.strip()]
