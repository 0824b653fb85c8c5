"""``PostIn``: the one shape of a post that every entry point accepts (API, queue, Coral, Perspective, files).

Each entry point translates its own wire format into a ``PostIn``; ``to_post`` is the one place a
core ``Post`` is built from it, so the author's facts and the blank-text rule are defined once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moderation_service.core.pipeline import Post, is_blank
from moderation_service.core.rulebook.matcher import AuthorFacts

__all__ = ["AuthorIn", "PostIn"]


class _Strict(BaseModel):
    """Refuse unknown keys: a typo must not silently drop a field."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class AuthorIn(_Strict):
    id: str | None = Field(default=None, max_length=200, description="never logged or stored in the audit trail")
    account_age_days: int | None = Field(default=None, ge=0, le=1_000_000)
    approved_posts: int | None = Field(default=None, ge=0, le=100_000_000)


class PostIn(_Strict):
    text: str = Field(description="the post body")
    title: str | None = None
    community: str | None = Field(default=None, max_length=64, description="selects the rulebook")
    locale: str | None = Field(default=None, max_length=35, description="BCP 47, e.g. en-GB; picks signposting")
    author: AuthorIn | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if is_blank(value):
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
