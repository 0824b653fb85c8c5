"""Typed rows the store reads and writes (pydantic), so callers never handle Redis hashes or JSON dicts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation_service.core.decision import Action, Decision, Priority
from moderation_service.core.post import PostIn

__all__ = [
    "Attempt",
    "Claimed",
    "Escalation",
    "FeedbackIn",
    "FeedbackOutcome",
    "FeedbackRecord",
    "QueueStats",
    "QueuedDecision",
    "Scope",
    "Submission",
    "SubmissionIn",
    "SubmissionStatus",
    "WebhookDue",
    "WebhookStatus",
]


DEFAULT_TENANT = "default"


class Scope(BaseModel):
    """Whose data a caller reaches: one tenant, and optionally only some of its communities (rulebook names)."""

    model_config = ConfigDict(frozen=True)

    tenant: str = DEFAULT_TENANT
    communities: frozenset[str] = frozenset()  # empty: every community of the tenant

    def allows(self, tenant: str, community: str | None) -> bool:
        return tenant == self.tenant and (not self.communities or (community is not None and community in self.communities))


class SubmissionStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class WebhookStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    retrying = "retrying"
    undelivered = "undelivered"


class SubmissionIn(PostIn):
    """A post for the queue: the same ``PostIn`` plus the client's id and where to call back."""

    post_id: str = Field(min_length=1, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2000)


class QueuedDecision(Decision):
    """What a finished submission stores, polls and sends: the Decision with the ids it answers."""

    submission_id: str
    post_id: str | None = None


class Attempt(BaseModel):
    """One attempt at a submission: what a queue job carries (a re-queued post is the next attempt)."""

    model_config = ConfigDict(frozen=True)

    submission_id: str
    attempt: int


class Claimed(Attempt):
    """An attempt a worker now holds under a lease, with the post (None once its text expired) and its tenant."""

    body: SubmissionIn | None
    tenant: str = DEFAULT_TENANT


class Submission(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: SubmissionStatus
    post_id: str
    attempt: int
    created_at: float
    updated_at: float
    decision: QueuedDecision | None = None
    error: str | None = None
    callback_url: str | None = None
    webhook_status: WebhookStatus | None = None
    webhook_attempts: int = 0
    tenant: str = DEFAULT_TENANT
    community: str | None = None


class WebhookDue(BaseModel):
    """A webhook delivery attempt waiting for its retry time."""

    model_config = ConfigDict(frozen=True)

    submission_id: str
    attempt: int = Field(ge=1)


class Escalation(BaseModel):
    """An escalated decision on the human queue: priority and categories, never the post's text."""

    model_config = ConfigDict(frozen=True)

    id: str
    priority: Priority
    post_id: str | None
    categories: list[str]
    context: str | None
    created_at: float
    age_seconds: float
    status: Literal["open", "acked"] = "open"
    acked_at: float | None = None
    acked_by: str | None = Field(default=None, description="the id of the moderator's API key")
    community: str | None = Field(default=None, description="the rulebook the post was judged under")
    tenant: str = DEFAULT_TENANT


class FeedbackOutcome(StrEnum):
    upheld = "upheld"
    overturned = "overturned"


class FeedbackIn(BaseModel):
    """A moderator's verdict on a decision, kept for calibration."""

    model_config = ConfigDict(extra="forbid")

    outcome: FeedbackOutcome
    final_action: Action
    categories: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    note: str = Field(default="", max_length=2000, description="kept for calibration; do not paste post text here")


class FeedbackRecord(FeedbackIn):
    model_config = ConfigDict(extra="ignore")

    decision_id: str
    key_id: str
    created_at: float
    tenant: str = DEFAULT_TENANT


class QueueStats(BaseModel):
    """What the metrics scrape reads: jobs waiting per queue, the oldest unfinished submission, the human queue."""

    model_config = ConfigDict(frozen=True)

    depth: dict[str, int]
    oldest_pending_age_s: float
    open_escalations: list[Escalation]
