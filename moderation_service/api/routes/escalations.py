"""The human queue: escalated decisions oldest first, acknowledged by a moderator; and feedback."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from moderation_service.api.auth import require
from moderation_service.api.problems import problem
from moderation_service.api.schemas import StrictModel
from moderation_service.api.state import require_store, state_of
from moderation_service.decision import Action
from moderation_service.keys import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["escalations"])
Moderator = Annotated[ApiKey, Depends(require("moderator"))]


class Outcome(StrEnum):
    upheld = "upheld"
    overturned = "overturned"


class Feedback(StrictModel):
    outcome: Outcome
    final_action: Action
    categories: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    note: str = Field(default="", max_length=2000, description="kept for calibration; do not paste post text here")


class EscalationStatus(StrEnum):
    open = "open"
    acked = "acked"


@router.get("/escalations")
def list_escalations(
    request: Request,
    key: Moderator,
    status: Annotated[EscalationStatus, Query()] = EscalationStatus.open,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Open escalations oldest first, each with its age in seconds; or handled ones, most recently acknowledged first."""
    store = require_store(state_of(request))
    rows = store.open_escalations(limit) if status is EscalationStatus.open else store.acked_escalations(limit)
    return {"status": status.value, "escalations": rows}


@router.post("/escalations/{decision_id}/ack")
def ack_escalation(decision_id: str, request: Request, key: Moderator) -> JSONResponse:
    if not require_store(state_of(request)).ack_escalation(decision_id, key.id):
        return problem(404, "not_found", "Not found", "no open escalation with that id")
    return JSONResponse({"id": decision_id, "status": "acked"})


@router.post("/decisions/{decision_id}/feedback", status_code=201)
def feedback(decision_id: str, body: Feedback, request: Request, key: Moderator) -> JSONResponse:
    store = require_store(state_of(request))
    if not store.decision_exists(decision_id):
        return problem(404, "not_found", "Not found", "no decision with that id (or its record has expired)")
    store.add_feedback(decision_id, body.model_dump(mode="json"), key.id)
    return JSONResponse({"decision_id": decision_id, "stored": True}, status_code=201)
