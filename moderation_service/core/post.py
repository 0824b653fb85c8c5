"""``PostIn``: the one shape of a post that every entry point accepts (API, queue, Coral, Perspective, files).

Each entry point translates its own wire format into a ``PostIn``; ``to_post`` is the one place a
core ``Post`` is built from it, so the author's facts and the blank-text rule are defined once.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moderation_service.core.author import AuthorFacts
from moderation_service.core.pipeline import Post, is_blank

__all__ = ["NOT_BLANK", "AuthorIn", "PostIn"]

# At least one character that ``str.isspace`` does not call white space: the schema says what ``is_blank`` refuses.
NOT_BLANK = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# JSON may escape an unpaired UTF-16 surrogate ("\\ud800"); no encoder (RE2's included) accepts one.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Strict(BaseModel):
    """Refuse unknown keys: a typo must not silently drop a field."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class AuthorIn(AuthorFacts):
    """The author on the wire: the facts rules read, plus an id that never reaches the core."""

    id: str | None = Field(default=None, max_length=200, description="never logged or stored in the audit trail")


class PostIn(_Strict):
    text: str = Field(description="the post body (not only white space)", pattern=NOT_BLANK)
    title: str | None = None
    community: str | None = Field(default=None, max_length=64, description="selects the rulebook")
    locale: str | None = Field(default=None, max_length=35, description="BCP 47, e.g. en-GB; picks signposting")
    author: AuthorIn | None = None

    @field_validator("text", "title", mode="before")
    @classmethod
    def _valid_unicode(cls, value: object) -> object:
        """Decided once, here, for every entry point: a lone surrogate becomes U+FFFD and the post is
        judged as usual (a 422 would let Coral publish it unmoderated; a 500 loses it)."""
        return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value

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
            author=AuthorFacts(**author.model_dump(exclude={"id"})),
        )
