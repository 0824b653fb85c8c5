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
    classifiers: str = Field(default="", description="comma-separated classifier names, e.g. 'embedded'")
    classifier_timeout_s: float = Field(default=2.0, gt=0)
    classifier_threads: int = Field(default=16, ge=1, le=256)
    fallback_action: Action = Action.hold
    api_keys_file: Path | None = None
    api_keys: str = Field(default="", description="hashed key lines, newline-separated")
    models_dir: Path = Field(default_factory=lambda: default_rules_dir().parent / "models")
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "moderation-service")
    detoxify_checkpoint: Path | None = None
    detoxify_model_type: str | None = None
    log_level: str = "INFO"

    @field_validator("fallback_action")
    @classmethod
    def _fallback_is_safe(cls, value: Action) -> Action:
        if value is Action.allow:
            raise ValueError("fallback_action must be hold or escalate: a failed check may not publish a post unseen")
        return value

    @property
    def classifier_names(self) -> list[str]:
        return [name.strip() for name in self.classifiers.split(",") if name.strip()]
