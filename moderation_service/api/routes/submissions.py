"""Queued moderation: submit now, get the decision by polling or by a signed webhook.

202 is returned only after the submission is stored in Redis (AOF); when Redis cannot be reached
the answer is 503 with Retry-After, never 202, so a forum knows to retry. Idempotent per
(API key, post_id): the same post again returns the existing submission, different text is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from rq import Queue

from moderation_service.api.auth import require
from moderation_service.api.schemas import ModerateRequest, StrictModel
from moderation_service.api.state import AppState, require_store, state_of
from moderation_service.errors import InputError
from moderation_service.keys import ApiKey
from moderation_service.queue import JOB_FUNCTION, job_id
from moderation_service.webhooks import check_callback_url

__all__ = ["router"]

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])
Submitter = Annotated[ApiKey, Depends(require("submit"))]


class SubmissionRequest(ModerateRequest):
    post_id: str = Field(min_length=1, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2000)


class SubmissionBatch(StrictModel):
    items: list[SubmissionRequest] = Field(min_length=1)


def _accept(state: AppState, key: ApiKey, item: SubmissionRequest) -> tuple[dict[str, Any], bool]:
    state.pipeline.check(item.to_post())
    state.rulebooks.get(item.community)
    if item.callback_url:
        check_callback_url(item.callback_url, state.settings.allowed_callback_hosts)
    store = require_store(state)
    body = item.model_dump(mode="json")
    sub_id, created = store.create_submission(key.id, item.post_id, body, item.callback_url)
    if created:
        try:
            queue = Queue(state.settings.queue_name, connection=store.redis)
            queue.enqueue(JOB_FUNCTION, sub_id, 1, job_id=job_id(sub_id, 1), job_timeout=max(30, int(state.settings.job_lease_s)))
        except redis.RedisError:
            pass  # stored durably but not queued: the reaper queues it, so the post is still never lost
    view = {"submission_id": sub_id, "post_id": item.post_id, "status_url": f"/v1/submissions/{sub_id}"}
    return view, created


@router.post("", status_code=202)
def submit(body: SubmissionRequest, request: Request, key: Submitter) -> JSONResponse:
    view, created = _accept(state_of(request), key, body)
    return JSONResponse({**view, "status": "queued" if created else "existing"}, status_code=202 if created else 200)


@router.post("/batch", status_code=202)
def submit_batch(body: SubmissionBatch, request: Request, key: Submitter) -> JSONResponse:
    state = state_of(request)
    if len(body.items) > state.settings.max_submission_batch:
        raise InputError(f"a batch holds at most {state.settings.max_submission_batch} submissions; got {len(body.items)}")
    for index, item in enumerate(body.items):
        try:
            state.pipeline.check(item.to_post())
            if item.callback_url:
                check_callback_url(item.callback_url, state.settings.allowed_callback_hosts)
        except InputError as exc:
            raise InputError(f"items[{index}]: {exc}") from exc
    results = []
    for item in body.items:
        view, created = _accept(state, key, item)
        results.append({**view, "status": "queued" if created else "existing"})
    return JSONResponse({"submissions": results}, status_code=202)


@router.get("/{submission_id}")
def get_submission(submission_id: str, request: Request, key: Submitter) -> JSONResponse:
    submission = require_store(state_of(request)).get(submission_id)
    if submission is None:
        return JSONResponse(
            {"type": "urn:moderation-service:problem:not_found", "title": "Not found", "status": 404, "code": "not_found",
             "detail": "no such submission (or its record has expired)"},
            status_code=404,
            media_type="application/problem+json",
        )  # fmt: skip
    view: dict[str, Any] = {
        "submission_id": submission.id,
        "post_id": submission.post_id,
        "status": submission.status,
        "attempt": submission.attempt,
        "created_at": submission.created_at,
        "updated_at": submission.updated_at,
    }
    if submission.status == "done":
        view["decision"] = submission.decision
    if submission.status == "failed":
        view["error"] = submission.error
    if submission.callback_url:
        view["webhook"] = {"status": submission.webhook_status or "pending", "attempts": submission.webhook_attempts}
    return JSONResponse(view)
