"""The decision store and job queues: every Redis and RQ key lives in this package."""

from moderation_service.store.queue import JobQueue
from moderation_service.store.redis_store import Store, connect
from moderation_service.store.rows import (
    Attempt,
    Claimed,
    Escalation,
    FeedbackIn,
    FeedbackOutcome,
    FeedbackRecord,
    QueuedDecision,
    QueueStats,
    Scope,
    Submission,
    SubmissionIn,
    SubmissionStatus,
    WebhookDue,
    WebhookStatus,
)

__all__ = [
    "Attempt",
    "Claimed",
    "Escalation",
    "FeedbackIn",
    "FeedbackOutcome",
    "FeedbackRecord",
    "JobQueue",
    "QueueStats",
    "Scope",
    "QueuedDecision",
    "Store",
    "Submission",
    "SubmissionIn",
    "SubmissionStatus",
    "WebhookDue",
    "WebhookStatus",
    "connect",
]
