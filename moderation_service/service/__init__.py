"""What happens to a post and after its decision, one function each, for every entry point.

The sync route, the queue job, Coral, Perspective and the file classifier all call these; metrics
are counted here, once per post judged. The types re-exported below are the service's vocabulary,
so the API, workers and CLI never import the core directly.
"""

from moderation_service.core.decision import Action, Decision, Signposting
from moderation_service.core.html_text import html_to_text
from moderation_service.core.post import AuthorIn, PostIn
from moderation_service.service.parts import Services
from moderation_service.store import (
    Escalation,
    FeedbackIn,
    FeedbackOutcome,
    FeedbackRecord,
    QueuedDecision,
    Submission,
    SubmissionIn,
    SubmissionStatus,
)

__all__ = [
    "Action",
    "AuthorIn",
    "Decision",
    "Escalation",
    "FeedbackIn",
    "FeedbackOutcome",
    "FeedbackRecord",
    "PostIn",
    "QueuedDecision",
    "Services",
    "Signposting",
    "Submission",
    "SubmissionIn",
    "SubmissionStatus",
    "html_to_text",
]
