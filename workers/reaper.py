"""Close RQ's gap: a job whose worker died is never re-run by RQ itself (rq#152).

Every worker runs this loop in a thread; a short Redis lock lets one of them act per tick. It
re-queues submissions whose lease ran out (worker killed, job hung) and queued submissions whose
job is missing, up to ``max_attempts``; then marks them failed with the reason. It also moves
webhook retries that are due back onto the webhook queue.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from moderation_service.queue import JOB_FUNCTION, WEBHOOK_FUNCTION, job_id
from moderation_service.store import StoreUnavailable
from workers.context import WorkerContext

__all__ = ["Reaper"]

log = logging.getLogger(__name__)
LOCK = "ms:reaper:lock"


class Reaper(threading.Thread):
    def __init__(self, ctx: WorkerContext) -> None:
        super().__init__(name="reaper", daemon=True)
        self.ctx = ctx
        self.stopping = threading.Event()
        self.requeued = 0
        self.failed = 0

    def run(self) -> None:
        while not self.stopping.wait(self.ctx.settings.reaper_interval_s):
            try:
                self.tick()
            except (StoreUnavailable, redis.RedisError) as exc:
                log.warning("reaper could not reach Redis", extra={"error": exc.__class__.__name__})
            except Exception as exc:  # the reaper is what guarantees no post is lost: it must never die
                log.exception("reaper tick failed", extra={"error": exc.__class__.__name__})

    def tick(self) -> None:
        store = self.ctx.store
        lock_ms = int(max(1.0, self.ctx.settings.reaper_interval_s) * 2000)
        if not store.redis.set(LOCK, "1", nx=True, px=lock_ms):
            return
        now = time.time()
        for sub_id in store.expired_leases(now):
            self._retry(sub_id, "worker stopped or job exceeded its lease")
        for sub_id in store.stale_pending(now - self.ctx.settings.requeue_stale_after_s):
            self._check_queued(sub_id)
        for member in store.pop_due_webhooks(now):
            sub_id, _, attempt = member.partition(":")
            self.ctx.webhook_queue.enqueue(WEBHOOK_FUNCTION, sub_id, int(attempt or 1), job_timeout=60)

    def _retry(self, sub_id: str, reason: str) -> None:
        attempt = self.ctx.store.requeue(
            sub_id, self.ctx.settings.max_attempts, f"{reason}; gave up after {self.ctx.settings.max_attempts} attempts"
        )
        if attempt > 0:
            self.requeued += 1
            self.ctx.metrics.jobs.labels(event="requeued").inc()
            self._enqueue(sub_id, attempt)
        elif attempt == 0:
            self.failed += 1
            self.ctx.metrics.jobs.labels(event="abandoned").inc()
            log.error("submission failed after all attempts", extra={"submission": sub_id})

    def _check_queued(self, sub_id: str) -> None:
        """A queued submission whose job is no longer waiting in the queue is queued again.

        That covers a job lost between writes, and a worker killed after it took the job from the
        queue but before it claimed it (RQ would leave that job "started" for ever: rq#152).
        Claimed (running) submissions are the lease's business.
        """
        submission = self.ctx.store.get(sub_id)
        if submission is None or submission.status != "queued":
            return
        waiting = self.ctx.store.redis.lpos(self.ctx.queue.key, job_id(sub_id, submission.attempt))
        if waiting is None:
            self._enqueue(sub_id, submission.attempt)
        self.ctx.store.touch_pending(sub_id)

    def _enqueue(self, sub_id: str, attempt: int) -> None:
        self.ctx.queue.enqueue(
            JOB_FUNCTION, sub_id, attempt, job_id=job_id(sub_id, attempt), job_timeout=max(30, int(self.ctx.settings.job_lease_s))
        )
