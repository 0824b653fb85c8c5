"""What the core is configured with, defaults written once: the settings groups extend these models.

The core cannot read settings (it imports nothing outside ``core``), so ``config.py`` builds its
``MODERATION_*`` groups on top of these plain models and hands the core only the group it needs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moderation_service.core.decision import Action

__all__ = ["ClassifierOptions", "PipelineOptions", "default_models_dir", "default_rules_dir"]


def default_rules_dir() -> Path:
    """The ``rules/`` folder shipped beside the package (repository checkout or image)."""
    return Path(__file__).resolve().parent.parent.parent / "rules"


def default_models_dir() -> Path:
    return default_rules_dir().parent / "models"


class PipelineOptions(BaseModel):
    """Limits and budgets of one ``Pipeline``; unsafe values are refused (a failed check may not publish)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fallback_action: Action = Action.hold
    classifier_timeout_s: float | None = Field(default=2.0, gt=0, description="model time budget per post; unset: no limit")
    classifier_timeout_per_kchar_s: float = Field(default=0.25, ge=0, description="added to the budget per 1,000 characters")
    max_text_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    model_queue_limit: int = Field(
        default=256, ge=1, description="model work (1,000-character units) queued per process before the sync API sheds with 503"
    )
    default_locale: str = Field(default="en-GB", min_length=2, description="signposting and phone region when a post gives none")

    @field_validator("fallback_action")
    @classmethod
    def _fallback_is_safe(cls, value: Action) -> Action:
        if value is Action.allow:
            raise ValueError("fallback_action must be hold or escalate: a failed check may not publish a post unseen")
        return value


class ClassifierOptions(BaseModel):
    """Only what classifier factories read: where models live and how many threads one model run gets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models_dir: Path = Field(default_factory=default_models_dir)
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "moderation-service")
    model_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime intra-op threads per model")
    detoxify_checkpoint: Path | None = None
    detoxify_config_dir: Path | None = Field(default=None, description="local folder with the checkpoint's HF config + tokenizer")
