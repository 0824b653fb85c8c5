"""The human queue and moderators' feedback: list and acknowledge escalations, record a verdict."""

from __future__ import annotations

from collections.abc import Iterator

from moderation_service.errors import NotFoundError
from moderation_service.service.parts import Services
from moderation_service.store import Escalation, FeedbackIn, FeedbackRecord

__all__ = ["acked_escalations", "acknowledge", "feedback_records", "open_escalations", "record_feedback"]


def open_escalations(services: Services, limit: int) -> list[Escalation]:
    """Oldest first, each with its age in seconds."""
    return services.require_store().open_escalations(limit)


def acked_escalations(services: Services, limit: int) -> list[Escalation]:
    """What moderators have handled, most recently acknowledged first."""
    return services.require_store().acked_escalations(limit)


def acknowledge(services: Services, decision_id: str, key_id: str) -> None:
    if not services.require_store().ack_escalation(decision_id, key_id):
        raise NotFoundError("no open escalation with that id")


def record_feedback(services: Services, decision_id: str, feedback: FeedbackIn, key_id: str) -> None:
    store = services.require_store()
    if not store.decision_exists(decision_id):
        raise NotFoundError("no decision with that id (or its record has expired)")
    store.add_feedback(decision_id, feedback, key_id)


def feedback_records(services: Services) -> Iterator[FeedbackRecord]:
    """Every stored verdict (no post text is ever stored with one), for calibration exports."""
    return services.require_store().iter_feedback()
