"""RQ job functions: thin entry points into the service layer, with the worker's loaded parts."""

from __future__ import annotations

from moderation_service.service import notify, queued
from moderation_service.workers.context import current

__all__ = ["deliver_webhook", "moderate_submission"]


def moderate_submission(submission_id: str, attempt: int) -> str:
    """Idempotent: running one twice stores one decision and sends one webhook."""
    ctx = current()
    ctx.running = submission_id
    try:
        return queued.moderate_queued(ctx.services, submission_id, attempt)
    finally:
        ctx.running = None


def deliver_webhook(submission_id: str, attempt: int) -> str:
    return notify.deliver_webhook(current().services, submission_id, attempt)
