"""RQ job functions. Idempotent: running one twice stores one decision and sends one webhook."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterator

import httpx

from moderation_service.decision import Action, Decision
from moderation_service.pipeline import Post
from moderation_service.queue import WEBHOOK_FUNCTION
from moderation_service.rulebook.matcher import AuthorFacts
from moderation_service.store import Store, StoreUnavailable
from moderation_service.webhooks import SIGNATURE_HEADER, sign
from workers.context import current

__all__ = ["deliver_webhook", "moderate_submission", "record_escalation"]

log = logging.getLogger(__name__)


def record_escalation(decision: Decision, decision_id: str, post_id: str | None, context: str = "") -> None:
    """Escalations go to the human queue, whichever path produced them."""
    if decision.action is Action.escalate:
        current().store.escalate(decision_id, decision, post_id, context)


@contextlib.contextmanager
def _heartbeat(store: Store, submission_id: str, lease_s: float) -> Iterator[None]:
    """Keep extending the lease while the job runs, so only a dead worker's job is re-queued."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            with contextlib.suppress(StoreUnavailable):
                store.extend_lease(submission_id, lease_s)

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def moderate_submission(submission_id: str, attempt: int) -> str:
    ctx = current()
    store = ctx.store
    if not store.claim(submission_id, attempt, ctx.settings.job_lease_s):
        ctx.metrics.jobs.labels(event="skipped").inc()
        return "skipped"  # finished already, or a newer attempt owns it
    ctx.metrics.jobs.labels(event="started").inc()
    body = store.body(submission_id)
    if body is None:
        store.fail(submission_id, "text_expired")
        ctx.metrics.jobs.labels(event="failed").inc()
        return "failed"
    author = body.get("author") or {}
    post = Post(
        text=body["text"],
        title=body.get("title"),
        community=body.get("community"),
        locale=body.get("locale"),
        author=AuthorFacts(account_age_days=author.get("account_age_days"), approved_posts=author.get("approved_posts")),
    )
    try:
        with _heartbeat(store, submission_id, ctx.settings.job_lease_s):
            decision = ctx.pipeline.moderate(post)
    except Exception as exc:  # e.g. the community's rulebook was removed since submission
        store.fail(submission_id, f"cannot moderate: {exc.__class__.__name__}")
        ctx.metrics.jobs.labels(event="failed").inc()
        return "failed"
    payload = {"submission_id": submission_id, "post_id": body.get("post_id"), **decision.model_dump(mode="json")}
    ctx.metrics.jobs.labels(event="finished").inc()
    if store.complete(submission_id, payload):
        record_escalation(decision, submission_id, body.get("post_id"))
        if body.get("callback_url"):
            ctx.webhook_queue.enqueue(WEBHOOK_FUNCTION, submission_id, 1, job_timeout=60)
    return decision.action.value


def _backoff(settings_base: float, settings_max: float, attempt: int) -> float:
    """Exponential with full jitter: spreads retries from many submissions apart."""
    return random.uniform(0, min(settings_max, settings_base * 2 ** (attempt - 1)))


def deliver_webhook(submission_id: str, attempt: int) -> str:
    ctx = current()
    settings = ctx.settings
    submission = ctx.store.get(submission_id)
    if submission is None or submission.decision is None or submission.callback_url is None:
        return "nothing"
    if submission.webhook_status == "delivered":
        return "delivered"
    body = json.dumps({"event": "decision", **submission.decision}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.webhook_secret, body),
        "User-Agent": "moderation-service",
    }
    try:
        response = httpx.post(
            submission.callback_url, content=body, headers=headers, timeout=settings.webhook_timeout_s, follow_redirects=False
        )
        ok = 200 <= response.status_code < 300
    except httpx.HTTPError:
        ok = False
    outcome = "delivered" if ok else ("undelivered" if attempt >= settings.webhook_max_attempts else "retrying")
    ctx.metrics.webhooks.labels(outcome=outcome).inc()
    ctx.store.webhook_result(submission_id, outcome, attempt)
    if outcome != "retrying":
        return outcome
    due = time.time() + _backoff(settings.webhook_backoff_base_s, settings.webhook_backoff_max_s, attempt)
    ctx.store.schedule_webhook(f"{submission_id}:{attempt + 1}", due)
    return "retrying"
