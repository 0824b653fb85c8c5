"""The risk dimensions of the Columbia scale (C-SSRS) that the service looks for, and one found signal."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from moderation_service.core.decision import DistressLevel

__all__ = ["HEAD_LABELS", "IDEATION", "LEVEL_HEADS", "RISK_CONTEXT", "RISK_PREFIX", "Dimension", "RiskSignal"]


class Dimension(StrEnum):
    passive_ideation = "passive_ideation"
    active_ideation = "active_ideation"
    intent = "intent"
    means = "means"
    plan = "plan"
    timing = "timing"
    preparation = "preparation"
    attempt = "attempt"
    self_harm = "self_harm"
    concern_other = "concern_other"
    hopelessness = "hopelessness"


# Wanting to die, or saying so in despair; combined with any RISK_CONTEXT it is imminent.
IDEATION = frozenset({Dimension.passive_ideation, Dimension.active_ideation, Dimension.intent, Dimension.hopelessness})
RISK_CONTEXT = frozenset({Dimension.means, Dimension.plan, Dimension.timing, Dimension.preparation})

# The model heads' labels: one per dimension ("risk.means") and two for the crisis level itself.
RISK_PREFIX = "risk."
LEVEL_HEADS = {"level.any": DistressLevel.high, "level.imminent": DistressLevel.imminent}
HEAD_LABELS = (*(RISK_PREFIX + d.value for d in Dimension), *LEVEL_HEADS)


class RiskSignal(BaseModel):
    """One dimension found in a post: by the grammar (with a span) or by a model head (with a score)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dimension: Dimension
    source: str = Field(description="'grammar' or 'model'")
    field: str | None = Field(default=None, description="'title' or 'body' for grammar signals")
    start: int | None = None
    end: int | None = None
    language: str | None = Field(default=None, description="the grammar's language")
    score: float | None = Field(default=None, description="model head probability")
    supporting: bool = Field(default=False, description="a model head below its own operating point, counted beside other signals")
