"""The human queue and moderators' feedback: list and acknowledge escalations, record a verdict.

Every call takes the caller's ``Scope`` (tenant and communities): another tenant's escalation or
decision is answered exactly like one that does not exist, so ids reveal nothing across tenants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

from moderation_service.core.decision import Action, Decision
from moderation_service.core.post import PostIn
from moderation_service.errors import NotFoundError
from moderation_service.service.moderate import judge
from moderation_service.service.parts import Services
from moderation_service.store import Escalation, FeedbackIn, FeedbackOutcome, FeedbackRecord, Scope

__all__ = [
    "acked_escalations",
    "acknowledge",
    "feedback_records",
    "open_escalations",
    "record_feedback",
    "record_suggestion",
    "suggestion_id",
]

SUPPORT_CATEGORIES = frozenset({"distress", "suicide_risk"})


def open_escalations(services: Services, limit: int, scope: Scope) -> list[Escalation]:
    """Oldest first, each with its age in seconds."""
    return services.require_store().open_escalations(limit, scope)


def acked_escalations(services: Services, limit: int, scope: Scope) -> list[Escalation]:
    """What moderators have handled, most recently acknowledged first."""
    return services.require_store().acked_escalations(limit, scope)


def acknowledge(services: Services, decision_id: str, key_id: str, scope: Scope) -> None:
    if not services.require_store().ack_escalation(decision_id, key_id, scope):
        raise NotFoundError("no open escalation with that id")


def record_feedback(services: Services, decision_id: str, feedback: FeedbackIn, key_id: str, scope: Scope) -> None:
    store = services.require_store()
    owner = store.owner(decision_id)
    if owner is None or not scope.allows(*owner):
        raise NotFoundError("no decision with that id (or its record has expired)")
    store.add_feedback(decision_id, feedback, key_id, scope.tenant)


def feedback_records(services: Services, tenant: str | None = None) -> Iterator[FeedbackRecord]:
    """Every stored verdict, or one tenant's (no post text is ever stored with one), for calibration exports."""
    return services.require_store().iter_feedback(tenant)


def suggestion_id(text: str) -> str:
    """The id a suggestion is filed under: one per text, derived from a hash (the text is never stored)."""
    return "suggested-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def record_suggestion(services: Services, post: PostIn, suggested: Mapping[str, float], key_id: str) -> Decision:
    """A client's suggested scores (Perspective's ``suggestscore``) kept as a moderator verdict on our decision.

    Categories suggested at 0.5 or more make the verdict "not fine" (escalate for distress, else hold); the
    verdict upholds our decision when both agree on fine / not fine. Only category names and scores are kept.
    """
    store = services.require_store()
    [decision] = judge(services, [post], count=False)
    flagged = sorted(category for category, value in suggested.items() if value >= 0.5)
    final = Action.allow if not flagged else Action.escalate if set(flagged) <= SUPPORT_CATEGORIES else Action.hold
    agrees = (decision.action is Action.allow) == (final is Action.allow)
    note = "suggested scores: " + ", ".join(f"{category}={value:.2f}" for category, value in sorted(suggested.items()))
    verdict = FeedbackIn(
        outcome=FeedbackOutcome.upheld if agrees else FeedbackOutcome.overturned, final_action=final, categories=flagged, note=note
    )
    store.add_feedback(suggestion_id(post.text), verdict, key_id)
    return decision
