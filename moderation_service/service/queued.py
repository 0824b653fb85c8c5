"""Moderate queued submissions (the RQ job's body), a batch per job: claim them all, judge each, then store every
decision with its escalation and its webhook, each post atomically, the batch in one round trip."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

from moderation_service.errors import StoreUnavailable
from moderation_service.service.moderate import count_decision, judge
from moderation_service.service.notify import release_due_webhooks
from moderation_service.service.parts import Services
from moderation_service.service.rulebook_sync import follow
from moderation_service.store import Attempt, QueuedDecision, Store

__all__ = ["moderate_batch", "moderate_queued"]


@contextlib.contextmanager
def _heartbeat(store: Store, held: list[str], lease_s: float) -> Iterator[None]:
    """Keep extending the batch's leases (one write per beat) while it runs, so only a dead worker's posts are re-queued."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            with contextlib.suppress(StoreUnavailable):
                store.extend_leases(list(held), lease_s)

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _count(services: Services, event: str, n: int = 1) -> None:
    if services.metrics is not None and n:
        services.metrics.jobs.labels(event=event).inc(n)


def moderate_batch(services: Services, attempts: Sequence[Attempt], held: list[str] | None = None) -> dict[str, int]:
    """Idempotent: running a batch twice stores one decision and sends one webhook per post. Returns what happened.

    ``held`` lists the claimed posts not yet finished while this runs, so a stopping worker can hand them back.
    Each post goes through the model alone (batching the int8 model shifts its scores with the batch neighbours).
    """
    store = services.require_store()
    lease_s = services.queue_settings.job_lease_s
    held = [] if held is None else held
    with contextlib.suppress(StoreUnavailable):
        # Before the claim: a post accepted after a reload is judged by the reloaded rules, and compiling
        # them (GIL-bound) cannot starve a lease's heartbeat while the submissions are still only queued.
        follow(services)
    claimed = store.claim_many(attempts, lease_s)
    _count(services, "skipped", len(attempts) - len(claimed))  # finished already, or a newer attempt owns them
    _count(services, "started", len(claimed))
    decisions: dict[str, QueuedDecision] = {}
    errors: dict[str, str] = {}
    held[:] = [c.submission_id for c in claimed]
    try:
        with _heartbeat(store, held, lease_s):
            for item in claimed:
                if item.body is None:
                    errors[item.submission_id] = "text_expired"
                    continue
                try:
                    decision = judge(services, [item.body], count=False)[0]
                except Exception as exc:  # e.g. the community's rulebook was removed since submission
                    errors[item.submission_id] = f"cannot moderate: {exc.__class__.__name__}"
                    continue
                decisions[item.submission_id] = QueuedDecision(
                    **dict(decision), submission_id=item.submission_id, post_id=item.body.post_id
                )
            # The outbox, per post: decision, escalation and first webhook in one atomic step (a crash cannot keep one without the others).
            stored = store.complete_many(claimed, decisions, errors)
    finally:
        held.clear()  # finished, or left to their leases (Redis gone): a later stop has nothing of this job to release
    _count(services, "finished", len(decisions))
    _count(services, "failed", len(errors))
    for sub_id in stored:
        count_decision(services, decisions[sub_id])  # once per post, even when a re-run judged it again
    if any(c.body is not None and c.body.callback_url and c.submission_id in stored for c in claimed):
        with contextlib.suppress(StoreUnavailable):
            release_due_webhooks(services, time.time())  # now rather than at the reaper's next tick
    return {"claimed": len(claimed), "stored": len(stored), "failed": len(errors), "skipped": len(attempts) - len(claimed)}


def moderate_queued(services: Services, submission_id: str, attempt: int) -> str:
    """One attempt (a job queued before batches): "skipped", "failed", or the stored action."""
    result = moderate_batch(services, [Attempt(submission_id=submission_id, attempt=attempt)])
    if result["skipped"]:
        return "skipped"
    if result["failed"]:
        return "failed"
    submission = services.require_store().get(submission_id)
    decision = submission.decision if submission is not None else None
    return decision.action.value if decision is not None else "done"
