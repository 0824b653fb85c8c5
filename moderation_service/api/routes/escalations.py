"""The human queue: escalated decisions oldest first, acknowledged by a moderator; and feedback."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from moderation_service.api.auth import ModeratorKey, scope_of
from moderation_service.api.routing import v1_router
from moderation_service.api.state import services_of
from moderation_service.service import FeedbackIn
from moderation_service.service.feedback import acked_escalations, acknowledge, open_escalations, record_feedback

__all__ = ["EscalationStatus", "router"]

router = v1_router("/v1", "escalations")


class EscalationStatus(StrEnum):
    open = "open"
    acked = "acked"


@router.get("/escalations")
def list_escalations(
    request: Request,
    key: ModeratorKey,
    status: Annotated[EscalationStatus, Query()] = EscalationStatus.open,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """This key's tenant's (and communities') open escalations oldest first, with their age; or handled ones, newest first."""
    services, scope = services_of(request), scope_of(key)
    listing = open_escalations if status is EscalationStatus.open else acked_escalations
    rows = listing(services, limit, scope)
    return {"status": status.value, "escalations": [e.model_dump(mode="json") for e in rows]}


@router.post("/escalations/{decision_id}/ack")
def ack_escalation(decision_id: str, request: Request, key: ModeratorKey) -> JSONResponse:
    acknowledge(services_of(request), decision_id, key.id, scope_of(key))
    return JSONResponse({"id": decision_id, "status": "acked"})


@router.post("/decisions/{decision_id}/feedback", status_code=201)
def feedback(decision_id: str, body: FeedbackIn, request: Request, key: ModeratorKey) -> JSONResponse:
    record_feedback(services_of(request), decision_id, body, key.id, scope_of(key))
    return JSONResponse({"decision_id": decision_id, "stored": True}, status_code=201)
