"""Schedule and deliver the signed decision webhook, with exponential backoff and full jitter."""

from __future__ import annotations

import json
import logging
import random
import time

import httpx

from moderation_service.callbacks import CallbackRefused, resolve_callback
from moderation_service.config import WebhookSettings
from moderation_service.service.parts import Services
from moderation_service.store import WebhookDue, WebhookStatus
from moderation_service.webhooks import SIGNATURE_HEADER, sign

__all__ = ["deliver_webhook", "release_due_webhooks", "schedule_webhook", "send_webhook"]

log = logging.getLogger(__name__)


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


def send_webhook(settings: WebhookSettings, url: str, body: bytes) -> tuple[bool, bool]:
    """(delivered, final): POST to the checked address; a refused origin or address, or no key, is final (no retry)."""
    if not settings.signing_secrets:
        log.error("webhook not sent: no MODERATION_WEBHOOK_SECRET to sign it with")
        return False, True
    try:
        target = resolve_callback(url, settings.callback_allowed_hosts, settings.callback_allowed_networks)
    except CallbackRefused:
        log.warning("webhook not sent: the callback's origin or address is not allowed")
        return False, True
    except OSError:
        return False, False  # the name did not resolve: try again later
    headers = {
        "Content-Type": "application/json",
        "Host": target.host_header,
        SIGNATURE_HEADER: sign(settings.signing_secrets, body),
        "User-Agent": "moderation-service",
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        # trust_env=False: no proxy from the environment may stand between the check and the connection.
        with httpx.Client(timeout=settings.timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.post(target.url, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError:
        return False, False
    return 200 <= response.status_code < 300, False


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
    ok, final = send_webhook(settings, submission.callback_url, body)
    if ok:
        outcome = WebhookStatus.delivered
    else:
        outcome = WebhookStatus.undelivered if final or attempt >= settings.max_attempts else WebhookStatus.retrying
    if services.metrics is not None:
        services.metrics.webhooks.labels(outcome=outcome.value).inc()
    store.webhook_result(submission_id, outcome, attempt)
    if outcome is WebhookStatus.retrying:
        due = time.time() + _backoff(settings.backoff_base_s, settings.backoff_max_s, attempt)
        schedule_webhook(services, submission_id, attempt + 1, due=due)
    return outcome.value
