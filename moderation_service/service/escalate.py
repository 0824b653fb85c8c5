"""Record an escalation on the human queue: one function for the sync route, the queue job and Coral."""

from __future__ import annotations

import logging
import secrets

from moderation_service.core.decision import Action, Decision
from moderation_service.errors import StoreUnavailable
from moderation_service.service.parts import Services
from moderation_service.store.rows import DEFAULT_TENANT

__all__ = ["record_escalation"]

log = logging.getLogger(__name__)


def record_escalation(
    services: Services,
    decision: Decision,
    *,
    post_id: str | None = None,
    context: str = "",
    decision_id: str | None = None,
    best_effort: bool = True,
    tenant: str = DEFAULT_TENANT,
) -> str | None:
    """The escalation's id once it is on the human queue; None when the decision is not an escalation.

    It goes on ``tenant``'s queue, filed under the rulebook (community) the post was judged by.
    Best effort where the caller already holds the decision (sync route, Coral): with no store, or
    the store down, it logs, counts ``moderation_escalations_unrecorded_total`` and returns None rather
    than fail the request; the caller must then say so in its answer. ``best_effort=False`` raises
    instead. (Queue jobs write their escalation with the decision, in ``Store.complete``.)
    """
    if decision.action is not Action.escalate:
        return None
    if services.store is None:
        _unrecorded(services, "no_store")
        return None
    decision_id = decision_id or secrets.token_hex(12)
    try:
        services.store.escalate(decision_id, decision, post_id, context, tenant)
    except StoreUnavailable:
        if not best_effort:
            raise
        log.error("escalation not recorded: store unavailable", extra={"action": decision.action.value})
        _unrecorded(services, "store_unavailable")
        return None
    return decision_id


def _unrecorded(services: Services, reason: str) -> None:
    """Counted, so an alert (EscalationNotRecorded) tells a person that the human queue missed one."""
    if services.metrics is not None:
        services.metrics.escalations_unrecorded.labels(reason=reason).inc()
