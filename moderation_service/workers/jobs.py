"""RQ job functions: thin entry points into the service layer, with the worker's loaded parts."""

from __future__ import annotations

from collections.abc import Sequence

from moderation_service.service import notify, queued
from moderation_service.store import Attempt
from moderation_service.workers.context import current

__all__ = ["deliver_webhook", "moderate_batch", "moderate_submission"]


def moderate_batch(pairs: Sequence[Sequence[str | int]]) -> dict[str, int]:
    """A batch of [submission id, attempt] pairs (``store.queue``). Idempotent: a re-run stores one decision and
    sends one webhook per post."""
    ctx = current()
    attempts = [Attempt(submission_id=str(sub_id), attempt=int(attempt)) for sub_id, attempt in pairs]
    return queued.moderate_batch(ctx.services, attempts, ctx.running)


def moderate_submission(submission_id: str, attempt: int) -> dict[str, int]:
    """A job of one attempt, as versions before batch jobs queued it (still in Redis at upgrade)."""
    return moderate_batch([[submission_id, attempt]])


def deliver_webhook(submission_id: str, attempt: int) -> str:
    return notify.deliver_webhook(current().services, submission_id, attempt)
