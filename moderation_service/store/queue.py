"""The RQ queues: moderation jobs (each a batch of submission attempts) and webhook deliveries; job ids and queue keys live here."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import redis
from rq import Queue

from moderation_service.errors import StoreUnavailable
from moderation_service.store import keys
from moderation_service.store.rows import Attempt

__all__ = ["BATCH_POSTS", "MODERATE_BATCH_JOB", "WEBHOOK_JOB", "JobQueue", "job_id"]

# Import paths of the job functions, as RQ records them (the workers package imports the store, not back).
MODERATE_BATCH_JOB = "moderation_service.workers.jobs.moderate_batch"
WEBHOOK_JOB = "moderation_service.workers.jobs.deliver_webhook"
WEBHOOK_TIMEOUT_S = 60
# Posts per moderation job. RQ's bookkeeping (job hash, state changes, heartbeat, result) costs a worker more
# than a rules-only decision, so a job carries up to this many posts and that cost is shared by all of them;
# small enough that one job with the model still ends in well under a second (a stop waits for it).
BATCH_POSTS = 32


def job_id(submission_id: str, attempt: int) -> str:
    """A job of one attempt is named after it, so a re-queued attempt never collides with the one it replaces."""
    return f"{submission_id}-{attempt}"


def _payload(attempts: Sequence[Attempt]) -> list[list[str | int]]:
    """What the job carries: [submission id, attempt] pairs (plain values, so any worker version can read them)."""
    return [[a.submission_id, a.attempt] for a in attempts]


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
        """A job of one attempt (a single submission, or the reaper's re-queue)."""
        self.enqueue_moderations([Attempt(submission_id=submission_id, attempt=attempt)])

    def enqueue_moderations(self, attempts: Sequence[Attempt]) -> None:
        """One job per ``BATCH_POSTS`` attempts, all queued in one transaction (one round trip).

        Each submission records the job that carries it, so the reaper can tell a waiting post from a lost one.
        """
        if not attempts:
            return
        chunks = [attempts[i : i + BATCH_POSTS] for i in range(0, len(attempts), BATCH_POSTS)]
        datas = []
        pipe = self._client.pipeline()
        for chunk in chunks:
            name = job_id(chunk[0].submission_id, chunk[0].attempt) if len(chunk) == 1 else f"batch-{secrets.token_hex(12)}"
            datas.append(
                Queue.prepare_data(
                    MODERATE_BATCH_JOB, args=(_payload(chunk),), job_id=name, timeout=self._job_timeout, description="moderate"
                )
            )
            for item in chunk:
                pipe.hset(keys.submission(item.submission_id), "job", name)
        try:
            self.moderation.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc

    def enqueue_webhook(self, submission_id: str, attempt: int) -> None:
        try:
            self.webhooks.enqueue(WEBHOOK_JOB, submission_id, attempt, job_timeout=WEBHOOK_TIMEOUT_S)
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc

    def is_waiting(self, submission_id: str, attempt: int) -> bool:
        """Whether that attempt's job still sits in the queue (not yet taken by a worker).

        The job is the one the submission records (a batch), else the attempt's own (queued before batches).
        """
        try:
            recorded: bytes | None = self._client.hget(keys.submission(submission_id), "job")  # type: ignore[assignment]
            name = recorded.decode() if recorded else job_id(submission_id, attempt)
            return self._client.lpos(keys.rq_queue(self.moderation.name), name) is not None
        except redis.RedisError as exc:
            raise StoreUnavailable("the queue (Redis) is unreachable") from exc
