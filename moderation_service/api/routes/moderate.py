"""Synchronous moderation: one post, or a batch of up to ``max_batch`` in one call."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from moderation_service.api.auth import require
from moderation_service.api.schemas import BatchRequest, BatchResponse, ModerateRequest, ModerationResult
from moderation_service.api.state import AppState, state_of
from moderation_service.decision import Action, Decision
from moderation_service.errors import InputError, TextTooLongError
from moderation_service.keys import ApiKey
from moderation_service.store import StoreUnavailable

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["moderate"])
Moderator = Annotated[ApiKey, Depends(require("moderate"))]


@router.post("/moderate", response_model=ModerationResult, response_model_exclude_none=False)
def moderate(body: ModerateRequest, request: Request, key: Moderator) -> ModerationResult:
    """Judge one post now: allow, hold or escalate, with reasons, spans and signposting."""
    state = state_of(request)
    decision = state.pipeline.moderate(body.to_post())
    return ModerationResult(**decision.model_dump(), post_id=body.post_id, decision_id=_record(state, decision, body.post_id))


@router.post("/moderate/batch", response_model=BatchResponse)
def moderate_batch(body: BatchRequest, request: Request, key: Moderator) -> BatchResponse:
    """Judge up to ``max_batch`` posts in order; the batch is refused whole if any item is invalid."""
    state = state_of(request)
    if len(body.items) > state.settings.max_batch:
        raise InputError(f"a batch holds at most {state.settings.max_batch} items; got {len(body.items)}")
    posts = [item.to_post() for item in body.items]
    for index, post in enumerate(posts):
        try:
            state.pipeline.check(post)
        except TextTooLongError:
            raise
        except InputError as exc:
            raise InputError(f"items[{index}]: {exc}") from exc
    decisions = state.pipeline.moderate_batch(posts)
    return BatchResponse(
        results=[
            ModerationResult(**d.model_dump(), post_id=item.post_id, decision_id=_record(state, d, item.post_id))
            for d, item in zip(decisions, body.items, strict=True)
        ]
    )


def _record(state: AppState, decision: Decision, post_id: str | None) -> str | None:
    """Escalations also reach the human queue from the sync path (best effort: the caller has the decision)."""
    if decision.action is not Action.escalate or state.store is None:
        return None
    decision_id = secrets.token_hex(12)
    try:
        state.store.escalate(decision_id, decision, post_id)
    except StoreUnavailable:
        log.error("escalation not recorded: store unavailable", extra={"action": decision.action.value})
        return None
    return decision_id
