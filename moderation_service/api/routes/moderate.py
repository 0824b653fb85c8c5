"""Synchronous moderation: one post, or a batch of up to ``max_batch`` in one call.

``X-Moderation-Deadline-Ms``: answer inside that many milliseconds. A post whose model cannot finish
in time is answered from the rules and crisis grammars (``partial: true``, ``partial_reason``); the
model finishes in the background and a more severe decision is recorded as an escalation. Escalations
are written after the answer has gone out, so ``escalation_recorded`` is null in such an answer (a
failed write still counts ``moderation_escalations_unrecorded_total``). Without the header a request
waits for the model, and is shed with 503 + ``Retry-After`` while the model queue is full; with it, a
request that waited in the server past its whole budget before it could be judged is shed the same way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Header, Request, Response
from pydantic import BaseModel

from moderation_service.api.auth import ModerateKey, scope_of
from moderation_service.api.routing import v1_router
from moderation_service.api.schemas import BatchRequest, BatchResponse, ModerateRequest, ModerationResult
from moderation_service.api.state import arrived, services_of
from moderation_service.service import Action
from moderation_service.service.in_time import (
    answer_by,
    finish_in_background,
    moderate_in_time_async,
    record_now,
    require_time_left,
    to_record_now,
)
from moderation_service.service.moderate import Judged, check_batch, moderate_now_async
from moderation_service.service.scope import require_communities
from moderation_service.store import Scope

__all__ = ["DEADLINE_HEADER", "router"]

router = v1_router("/v1", "moderate")
DEADLINE_HEADER = "X-Moderation-Deadline-Ms"
Deadline = Annotated[
    int | None,
    Header(alias=DEADLINE_HEADER, ge=10, le=600_000, description="answer within this many ms (partial decision if the model cannot)"),
]


def _result(judged: Judged, post_id: str | None) -> ModerationResult:
    return ModerationResult(
        **dict(judged.decision), post_id=post_id, decision_id=judged.decision_id, escalation_recorded=judged.escalation_recorded
    )


async def _judge(
    request: Request, items: list[ModerateRequest], scope: Scope, deadline_ms: int | None, tasks: BackgroundTasks
) -> list[ModerationResult]:
    """Async, so the event loop awaits the model runners' futures: no request thread waits beside them."""
    services = services_of(request)
    post_ids = [item.post_id for item in items]
    if deadline_ms is None:
        judged = await moderate_now_async(services, items, post_ids, scope)
        return [_result(j, pid) for j, pid in zip(judged, post_ids, strict=True)]
    require_communities(services, scope, items)
    started = arrived(request)
    require_time_left(started, deadline_ms)
    results = await moderate_in_time_async(services, items, answer_by(started, deadline_ms))
    finish_in_background(services, results, post_ids, tenant=scope.tenant)  # callbacks only: no I/O, no thread
    if any(to_record_now(r) for r in results):
        tasks.add_task(record_now, services, results, post_ids, tenant=scope.tenant)  # a Redis write: a thread, after the answer
    return [
        ModerationResult(
            **dict(r.decision), post_id=pid, decision_id=r.decision_id if r.decision.action is Action.escalate else None
        )  # escalation_recorded stays null: the write happens after this answer
        for r, pid in zip(results, post_ids, strict=True)
    ]


def _json(model: BaseModel) -> Response:
    """The model serialised once by pydantic-core: FastAPI would validate it against the response model again."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/moderate", response_model=ModerationResult, response_model_exclude_none=False)
async def moderate(
    body: ModerateRequest, request: Request, key: ModerateKey, tasks: BackgroundTasks, deadline_ms: Deadline = None
) -> Response:
    """Judge one post now: allow, hold or escalate, with reasons, spans and signposting."""
    return _json((await _judge(request, [body], scope_of(key), deadline_ms, tasks))[0])


@router.post("/moderate/batch", response_model=BatchResponse)
async def moderate_batch(
    body: BatchRequest, request: Request, key: ModerateKey, tasks: BackgroundTasks, deadline_ms: Deadline = None
) -> Response:
    """Judge up to ``max_batch`` posts in order; the batch is refused whole if any item is invalid."""
    check_batch(services_of(request), body.items, services_of(request).api.max_batch)
    return _json(BatchResponse(results=await _judge(request, body.items, scope_of(key), deadline_ms, tasks)))
