"""Schedule and deliver the signed decision webhook, with exponential backoff and full jitter."""

from __future__ import annotations

import json
import random
import time

import httpx

from moderation_service.service.parts import Services
from moderation_service.store import WebhookDue, WebhookStatus
from moderation_service.webhooks import SIGNATURE_HEADER, sign

__all__ = ["deliver_webhook", "release_due_webhooks", "schedule_webhook"]


def schedule_webhook(services: Services, submission_id: str, attempt: int, due: float | None = None) -> None:
    """Queue a delivery attempt now, or keep it in the store until ``due`` (the reaper releases it)."""
    if due is None:
        services.require_queue().enqueue_webhook(submission_id, attempt)
    else:
        services.require_store().schedule_webhook(WebhookDue(submission_id=submission_id, attempt=attempt), due)


def release_due_webhooks(services: Services, now: float) -> int:
    """Move retries whose time has come onto the webhook queue; how many."""
    due = services.require_store().pop_due_webhooks(now)
    for item in due:
        schedule_webhook(services, item.submission_id, item.attempt)
    return len(due)


def _backoff(base_s: float, max_s: float, attempt: int) -> float:
    """Exponential with full jitter: spreads retries from many submissions apart."""
    return random.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))


def deliver_webhook(services: Services, submission_id: str, attempt: int) -> str:
    """POST the decision to the submission's callback; what happened (delivered, retrying, undelivered, nothing)."""
    settings = services.webhooks
    store = services.require_store()
    submission = store.get(submission_id)
    if submission is None or submission.decision is None or submission.callback_url is None:
        return "nothing"
    if submission.webhook_status is WebhookStatus.delivered:
        return WebhookStatus.delivered.value
    body = json.dumps({"event": "decision", **submission.decision.model_dump(mode="json")}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(settings.secret, body), "User-Agent": "moderation-service"}
    try:
        response = httpx.post(submission.callback_url, content=body, headers=headers, timeout=settings.timeout_s, follow_redirects=False)
        ok = 200 <= response.status_code < 300
    except httpx.HTTPError:
        ok = False
    if ok:
        outcome = WebhookStatus.delivered
    else:
        outcome = WebhookStatus.undelivered if attempt >= settings.max_attempts else WebhookStatus.retrying
    if services.metrics is not None:
        services.metrics.webhooks.labels(outcome=outcome.value).inc()
    store.webhook_result(submission_id, outcome, attempt)
    if outcome is WebhookStatus.retrying:
        due = time.time() + _backoff(settings.backoff_base_s, settings.backoff_max_s, attempt)
        schedule_webhook(services, submission_id, attempt + 1, due=due)
    return outcome.value
