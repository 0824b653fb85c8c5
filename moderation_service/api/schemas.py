"""Request and response bodies of the moderation API: the service's ``PostIn`` plus what HTTP adds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from moderation_service.service import Decision, PostIn, SubmissionIn

__all__ = ["BatchRequest", "BatchResponse", "ModerateRequest", "ModerationResult", "StrictModel", "SubmissionBatch"]


class StrictModel(BaseModel):
    """Request bodies refuse unknown keys: a typo must not silently drop a field."""

    model_config = ConfigDict(extra="forbid", strict=False)


class ModerateRequest(PostIn):
    post_id: str | None = Field(default=None, max_length=200)


class ModerationResult(Decision):
    post_id: str | None = None
    decision_id: str | None = Field(default=None, description="the stored decision's id, for feedback (null: no store, or it was down)")
    escalation_recorded: bool | None = Field(
        default=None,
        description="escalations only: false means the human queue did NOT get it (store down): alert a person another way",
    )


class BatchRequest(StrictModel):
    items: list[ModerateRequest] = Field(min_length=1)


class BatchResponse(BaseModel):
    results: list[ModerationResult]


class SubmissionBatch(StrictModel):
    items: list[SubmissionIn] = Field(min_length=1)
