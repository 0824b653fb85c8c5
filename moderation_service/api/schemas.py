"""Request and response bodies of the moderation API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moderation_service.decision import Decision
from moderation_service.pipeline import Post
from moderation_service.rulebook.matcher import AuthorFacts

__all__ = ["AuthorIn", "BatchRequest", "BatchResponse", "ModerateRequest", "ModerationResult", "StrictModel"]


class StrictModel(BaseModel):
    """Request bodies refuse unknown keys: a typo must not silently drop a field."""

    model_config = ConfigDict(extra="forbid", strict=False)


class AuthorIn(StrictModel):
    id: str | None = Field(default=None, max_length=200, description="never logged or stored in the audit trail")
    account_age_days: int | None = Field(default=None, ge=0, le=1_000_000)
    approved_posts: int | None = Field(default=None, ge=0, le=100_000_000)


class ModerateRequest(StrictModel):
    text: str = Field(description="the post body")
    title: str | None = None
    post_id: str | None = Field(default=None, max_length=200)
    community: str | None = Field(default=None, max_length=64, description="selects the rulebook")
    locale: str | None = Field(default=None, max_length=35, description="BCP 47, e.g. en-GB; picks signposting")
    author: AuthorIn | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must contain something other than white space")
        return value

    def to_post(self) -> Post:
        author = self.author or AuthorIn()
        return Post(
            text=self.text,
            title=self.title,
            community=self.community,
            locale=self.locale,
            author=AuthorFacts(account_age_days=author.account_age_days, approved_posts=author.approved_posts),
        )


class ModerationResult(Decision):
    post_id: str | None = None
    decision_id: str | None = Field(default=None, description="set when the decision was stored (escalations), for feedback")


class BatchRequest(StrictModel):
    items: list[ModerateRequest] = Field(min_length=1)


class BatchResponse(BaseModel):
    results: list[ModerationResult]
