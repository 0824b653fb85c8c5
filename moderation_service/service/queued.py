"""Moderate a queued submission (the RQ job's body): claim, judge, then store the decision, its escalation and its webhook at once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from moderation_service.core.decision import Decision
from moderation_service.errors import StoreUnavailable
from moderation_service.service.moderate import count_decision, judge
from moderation_service.service.notify import release_due_webhooks
from moderation_service.service.parts import Services
from moderation_service.service.rulebook_sync import follow
from moderation_service.store import QueuedDecision, Store

__all__ = ["moderate_queued"]


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


def _count(services: Services, event: str) -> None:
    if services.metrics is not None:
        services.metrics.jobs.labels(event=event).inc()


def moderate_queued(services: Services, submission_id: str, attempt: int) -> str:
    """Idempotent: running it twice stores one decision and sends one webhook. Returns what happened."""
    store = services.require_store()
    lease_s = services.queue_settings.job_lease_s
    with contextlib.suppress(StoreUnavailable):
        # Before the claim: a post accepted after a reload is judged by the reloaded rules, and compiling
        # them (GIL-bound) cannot starve a lease's heartbeat while the submission is still only queued.
        follow(services)
    if not store.claim(submission_id, attempt, lease_s):
        _count(services, "skipped")
        return "skipped"  # finished already, or a newer attempt owns it
    _count(services, "started")
    body = store.body(submission_id)
    if body is None:
        store.fail(submission_id, "text_expired")
        _count(services, "failed")
        return "failed"
    try:
        with _heartbeat(store, submission_id, lease_s):
            decision: Decision = judge(services, [body], count=False)[0]
    except Exception as exc:  # e.g. the community's rulebook was removed since submission
        store.fail(submission_id, f"cannot moderate: {exc.__class__.__name__}")
        _count(services, "failed")
        return "failed"
    _count(services, "finished")
    stored = QueuedDecision(**dict(decision), submission_id=submission_id, post_id=body.post_id)
    # The outbox: decision, escalation and first webhook in one atomic step (a crash cannot keep one without the others).
    if store.complete(stored, webhook=bool(body.callback_url)):
        count_decision(services, decision)  # once per post, even when a re-run judged it again
        if body.callback_url:
            with contextlib.suppress(StoreUnavailable):
                release_due_webhooks(services, time.time())  # now rather than at the reaper's next tick
    return decision.action.value
