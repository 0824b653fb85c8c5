"""``AuthorFacts``: what rules may know about a post's author, modelled once.

The matcher reads it, rule-file and suite tests write it, and the API's ``AuthorIn`` extends it with an
``id``; so a bound or a new fact is added in one place. Unknown facts stay ``None``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AuthorFacts"]


class AuthorFacts(BaseModel):
    """Facts a rule's ``author:`` condition tests; a rule for new accounts needs the account age."""

    # strict: counts are integers, never ``true`` or ``"3"`` quietly turned into one (the schema says integer).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    account_age_days: int | None = Field(default=None, ge=0, le=1_000_000)
    approved_posts: int | None = Field(default=None, ge=0, le=100_000_000)
