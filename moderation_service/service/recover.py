"""Close RQ's gap: a job whose worker died is never re-run by RQ itself (rq#152).

One pass (``reap``) re-queues submissions whose lease ran out (worker killed, job hung) and queued
submissions whose job is missing, up to ``max_attempts``, then marks them failed with the reason;
and it releases webhook retries that are due, and has the AOF rewritten when that is due. A short
lock in the store lets one worker act per tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from moderation_service.service.notify import release_due_webhooks
from moderation_service.service.parts import Services
from moderation_service.service.retention import rewrite_aof_when_due
from moderation_service.service.submit import enqueue_attempt
from moderation_service.store import SubmissionStatus

__all__ = ["Reaped", "reap"]

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    requeued: int = 0
    failed: int = 0


def _count(services: Services, event: str) -> None:
    if services.metrics is not None:
        services.metrics.jobs.labels(event=event).inc()


def _retry(services: Services, sub_id: str, reason: str, tally: Reaped) -> None:
    max_attempts = services.queue_settings.max_attempts
    attempt = services.require_store().requeue(sub_id, max_attempts, f"{reason}; gave up after {max_attempts} attempts")
    if attempt > 0:
        tally.requeued += 1
        _count(services, "requeued")
        enqueue_attempt(services, sub_id, attempt)
    elif attempt == 0:
        tally.failed += 1
        _count(services, "abandoned")
        log.error("submission failed after all attempts", extra={"submission": sub_id})


def _check_queued(services: Services, sub_id: str) -> None:
    """A queued submission whose job is no longer waiting in the queue is queued again.

    That covers a job lost between writes, and a worker killed after it took the job from the
    queue but before it claimed it (RQ would leave that job "started" for ever: rq#152).
    Claimed (running) submissions are the lease's business.
    """
    store = services.require_store()
    submission = store.get(sub_id)
    if submission is None or submission.status is not SubmissionStatus.queued:
        return
    if not services.require_queue().is_waiting(sub_id, submission.attempt):
        enqueue_attempt(services, sub_id, submission.attempt)
    store.touch_pending(sub_id)


def reap(services: Services, tally: Reaped, interval_s: float) -> None:
    """One tick; does nothing when another worker's reaper holds this tick's lock."""
    store = services.require_store()
    if not store.take_reaper_turn(int(max(1.0, interval_s) * 2000)):
        return
    now = time.time()
    for sub_id in store.expired_leases(now):
        _retry(services, sub_id, "worker stopped or job exceeded its lease", tally)
    for sub_id in store.stale_pending(now - services.queue_settings.requeue_stale_after_s):
        _check_queued(services, sub_id)
    release_due_webhooks(services, now)
    rewrite_aof_when_due(services)
