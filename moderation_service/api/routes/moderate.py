"""Synchronous moderation: one post, or a batch of up to ``max_batch`` in one call."""

from __future__ import annotations

from fastapi import Request

from moderation_service.api.auth import ModerateKey, scope_of
from moderation_service.api.routing import v1_router
from moderation_service.api.schemas import BatchRequest, BatchResponse, ModerateRequest, ModerationResult
from moderation_service.api.state import services_of
from moderation_service.service.moderate import Judged, check_batch, moderate_now

__all__ = ["router"]

router = v1_router("/v1", "moderate")


def _result(judged: Judged, post_id: str | None) -> ModerationResult:
    return ModerationResult(
        **dict(judged.decision), post_id=post_id, decision_id=judged.decision_id, escalation_recorded=judged.escalation_recorded
    )


@router.post("/moderate", response_model=ModerationResult, response_model_exclude_none=False)
def moderate(body: ModerateRequest, request: Request, key: ModerateKey) -> ModerationResult:
    """Judge one post now: allow, hold or escalate, with reasons, spans and signposting."""
    [judged] = moderate_now(services_of(request), [body], [body.post_id], scope_of(key))
    return _result(judged, body.post_id)


@router.post("/moderate/batch", response_model=BatchResponse)
def moderate_batch(body: BatchRequest, request: Request, key: ModerateKey) -> BatchResponse:
    """Judge up to ``max_batch`` posts in order; the batch is refused whole if any item is invalid."""
    services = services_of(request)
    check_batch(services, body.items, services.api.max_batch)
    judged = moderate_now(services, body.items, [item.post_id for item in body.items], scope_of(key))
    return BatchResponse(results=[_result(j, item.post_id) for j, item in zip(judged, body.items, strict=True)])
