"""The RQ queues: one job per submission attempt, and webhook deliveries; the job ids and queue keys live here."""

from __future__ import annotations

import redis
from rq import Queue

from moderation_service.errors import StoreUnavailable
from moderation_service.store import keys

__all__ = ["MODERATE_JOB", "WEBHOOK_JOB", "JobQueue", "job_id"]

# Import paths of the job functions, as RQ records them (the workers package imports the store, not back).
MODERATE_JOB = "moderation_service.workers.jobs.moderate_submission"
WEBHOOK_JOB = "moderation_service.workers.jobs.deliver_webhook"
WEBHOOK_TIMEOUT_S = 60


def job_id(submission_id: str, attempt: int) -> str:
    """One RQ job per attempt, so a re-queued attempt never collides with the one it replaces."""
    return f"{submission_id}-{attempt}"


class JobQueue:
    """The moderation queue and its webhook queue, built once per process."""

    def __init__(self, client: redis.Redis, name: str, job_lease_s: float) -> None:
        self.moderation = Queue(name, connection=client)
        self.webhooks = Queue(f"{name}-webhooks", connection=client)
        self._client = client
        self._job_timeout = max(30, int(job_lease_s))

    @property
    def names(self) -> list[str]:
        return [self.moderation.name, self.webhooks.name]

    def enqueue_moderation(self, submission_id: str, attempt: int) -> None:
        try:
            self.moderation.enqueue(
                MODERATE_JOB, submission_id, attempt, job_id=job_id(submission_id, attempt), job_timeout=self._job_timeout
            )
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc

    def enqueue_webhook(self, submission_id: str, attempt: int) -> None:
        try:
            self.webhooks.enqueue(WEBHOOK_JOB, submission_id, attempt, job_timeout=WEBHOOK_TIMEOUT_S)
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc

    def is_waiting(self, submission_id: str, attempt: int) -> bool:
        """Whether that attempt's job still sits in the queue (not yet taken by a worker)."""
        try:
            return self._client.lpos(keys.rq_queue(self.moderation.name), job_id(submission_id, attempt)) is not None
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc
