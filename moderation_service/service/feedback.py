"""The human queue and moderators' feedback: list and acknowledge escalations, record a verdict.

Every call takes the caller's ``Scope`` (tenant and communities): another tenant's escalation or
decision is answered exactly like one that does not exist, so ids reveal nothing across tenants.
"""

from __future__ import annotations

from collections.abc import Iterator

from moderation_service.errors import NotFoundError
from moderation_service.service.parts import Services
from moderation_service.store import Escalation, FeedbackIn, FeedbackRecord, Scope

__all__ = ["acked_escalations", "acknowledge", "feedback_records", "open_escalations", "record_feedback"]


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
