"""Queued moderation: submit now, get the decision by polling or by a signed webhook.

202 is returned only after the submission is stored in Redis (AOF); when Redis cannot be reached
the answer is 503 with Retry-After, never 202, so a forum knows to retry. Idempotent per
(API key, post_id): the same post again returns the existing submission, different text is 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from moderation_service.api.auth import SubmitKey, scope_of
from moderation_service.api.routing import v1_router
from moderation_service.api.schemas import SubmissionBatch
from moderation_service.api.state import services_of
from moderation_service.service import SubmissionIn, SubmissionStatus
from moderation_service.service.submit import Accepted, accept_batch, accept_submission, submission_status

__all__ = ["router"]

router = v1_router("/v1/submissions", "submissions", 409)


def _view(accepted: Accepted) -> dict[str, Any]:
    return {**accepted.model_dump(exclude={"created"}), "status": "queued" if accepted.created else "existing"}


@router.post("", status_code=202, responses={200: {"description": "the same post_id and text again: the existing submission"}})
def submit(body: SubmissionIn, request: Request, key: SubmitKey) -> JSONResponse:
    accepted = accept_submission(services_of(request), key.id, body, scope_of(key))
    return JSONResponse(_view(accepted), status_code=202 if accepted.created else 200)


@router.post("/batch", status_code=202)
def submit_batch(body: SubmissionBatch, request: Request, key: SubmitKey) -> JSONResponse:
    accepted = accept_batch(services_of(request), key.id, body.items, scope_of(key))
    return JSONResponse({"submissions": [_view(a) for a in accepted]}, status_code=202)


@router.get("/{submission_id}")
def get_submission(submission_id: str, request: Request, key: SubmitKey) -> JSONResponse:
    submission = submission_status(services_of(request), submission_id, scope_of(key))
    view: dict[str, Any] = {
        "submission_id": submission.id,
        "post_id": submission.post_id,
        "status": submission.status.value,
        "attempt": submission.attempt,
        "created_at": submission.created_at,
        "updated_at": submission.updated_at,
    }
    if submission.status is SubmissionStatus.done and submission.decision is not None:
        view["decision"] = submission.decision.model_dump(mode="json")
    if submission.status is SubmissionStatus.failed:
        view["error"] = submission.error
    if submission.callback_url:
        view["webhook"] = {"status": (submission.webhook_status or "pending"), "attempts": submission.webhook_attempts}
    return JSONResponse(view)
