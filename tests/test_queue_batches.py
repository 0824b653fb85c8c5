"""Batch jobs on a real redis-server, run in-process: how a batch is queued, re-run, and recovered by the reaper.

No worker process here (these drive the job body and the reaper directly, so nothing else takes the jobs);
the same jobs under real worker processes, SIGKILL and Redis restarts are in test_queue, test_processes and
tests/chaos.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from rq.job import Job

from moderation_service.bootstrap import build_services
from moderation_service.config import QueueSettings, WebhookSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.service.parts import Services
from moderation_service.service.queued import moderate_batch
from moderation_service.service.recover import Reaped, reap
from moderation_service.service.submit import accept_batch
from moderation_service.store import Attempt, Scope, SubmissionIn, keys
from moderation_service.store.queue import BATCH_POSTS
from tests.conftest import Keys, settings_for

RECEIVER = "http://127.0.0.1:9"  # allowed, never called here: the webhooks stay in the outbox where the test counts them
WEBHOOKS = WebhookSettings(
    secret="test-webhook-secret-0123456789abcdef-new", callback_allowed_hosts=[RECEIVER], callback_allowed_networks=["127.0.0.1/32"]
)
CRISIS = "I can't do this anymore, I've got my tablets saved up"


@pytest.fixture
def services(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str) -> Services:
    queue = QueueSettings(job_lease_s=6, requeue_stale_after_s=0.2, reaper_interval_s=0.2)
    return build_services(settings_for(shared_rules, keys, redis_url, queue=queue, webhooks=WEBHOOKS), pipeline=shared_pipeline)


def _items(n: int, prefix: str) -> list[SubmissionIn]:
    return [
        SubmissionIn(
            text=f"post {i}: my joints ache in the cold", post_id=f"{prefix}-{i}", callback_url=f"{RECEIVER}/hook" if i % 2 else None
        )
        for i in range(n)
    ]


def _jobs(services: Services) -> list[list[Attempt]]:
    """The waiting moderation jobs, oldest first, as the attempts each carries."""
    queue = services.require_queue().moderation
    jobs = [Job.fetch(job_id, connection=queue.connection) for job_id in queue.get_job_ids()]
    return [[Attempt(submission_id=s, attempt=a) for s, a in job.args[0]] for job in jobs]


def _decided(services: Services) -> Counter[str]:
    return Counter(e["id"] for e in services.require_store().audit_events(100_000) if e.get("event") == "decided")


def _leases(services: Services) -> dict[str, float]:
    rows: list[tuple[bytes, float]] = services.require_store().redis.zrange(keys.LEASES, 0, -1, withscores=True)  # type: ignore[assignment]
    return {sub_id.decode(): score for sub_id, score in rows}


def test_a_batch_is_queued_as_few_jobs_in_submission_order(services: Services) -> None:
    accepted = accept_batch(services, "k", _items(2 * BATCH_POSTS + 6, "order"))
    jobs = _jobs(services)
    assert [len(job) for job in jobs] == [BATCH_POSTS, BATCH_POSTS, 6]
    assert [a.submission_id for job in jobs for a in job] == [a.submission_id for a in accepted]
    assert all(a.attempt == 1 for job in jobs for a in job)
    assert all(services.require_queue().is_waiting(a.submission_id, 1) for a in accepted)
    again = accept_batch(services, "k", _items(2 * BATCH_POSTS + 6, "order"))  # idempotent: nothing new stored or queued
    assert [a.submission_id for a in again] == [a.submission_id for a in accepted] and not any(a.created for a in again)
    assert len(_jobs(services)) == 3


def test_a_batch_run_twice_stores_one_decision_escalation_and_webhook_per_post(services: Services) -> None:
    items = [*_items(9, "twice"), SubmissionIn(text=CRISIS, post_id="twice-crisis", callback_url=f"{RECEIVER}/hook")]
    accepted = accept_batch(services, "k", items, Scope(tenant="forum-a"))
    [job] = _jobs(services)
    store = services.require_store()
    first = moderate_batch(services, job)
    second = moderate_batch(services, job)  # the same job again (a re-run after a lost acknowledgement)
    assert first == {"claimed": 10, "stored": 10, "failed": 0, "skipped": 0}
    assert second == {"claimed": 0, "stored": 0, "failed": 0, "skipped": 10}
    assert store.decisions_stored() == 10
    assert set(_decided(services).values()) == {1} and len(_decided(services)) == 10
    webhooks = services.require_queue().webhooks
    assert webhooks.count == sum(1 for i in items if i.callback_url)  # one first delivery each, released at once
    assert store.redis.zcard(keys.WEBHOOKS_DUE) == 0
    crisis = store.get(accepted[-1].submission_id)
    assert crisis is not None and crisis.decision is not None and crisis.tenant == "forum-a"
    alone = services.pipeline.moderate_batch([items[-1].to_post()])[0]  # the queue judges a post as the sync path does
    assert (crisis.decision.action, crisis.decision.priority, crisis.decision.distress_level) == (
        alone.action,
        alone.priority,
        alone.distress_level,
    )
    assert crisis.decision.submission_id == crisis.id and crisis.decision.post_id == "twice-crisis"
    [escalation] = store.open_escalations(scope=Scope(tenant="forum-a"))
    assert escalation.id == crisis.id and escalation.priority == "urgent"
    assert store.open_escalations(scope=Scope(tenant="forum-b")) == []


def test_a_newer_attempt_and_a_finished_post_are_skipped_inside_a_batch(services: Services) -> None:
    accepted = accept_batch(services, "k", _items(5, "mixed"))
    [job] = _jobs(services)
    store = services.require_store()
    moderate_batch(services, job[:1])  # the first post is finished by an earlier job
    assert store.requeue(job[1].submission_id, 3, "test") == 2  # the second now belongs to attempt 2
    result = moderate_batch(services, job)
    assert result == {"claimed": 3, "stored": 3, "failed": 0, "skipped": 2}
    statuses = [store.get(a.submission_id) for a in accepted]
    assert [s.status.value if s else None for s in statuses] == ["done", "queued", "done", "done", "done"]
    assert moderate_batch(services, [Attempt(submission_id=job[1].submission_id, attempt=2)])["stored"] == 1
    assert store.decisions_stored() == 5


def test_expired_text_fails_its_post_and_not_the_batch(services: Services) -> None:
    accepted = accept_batch(services, "k", _items(4, "expired"))
    [job] = _jobs(services)
    store = services.require_store()
    store.redis.delete(keys.text(accepted[2].submission_id))
    assert moderate_batch(services, job) == {"claimed": 4, "stored": 3, "failed": 1, "skipped": 0}
    failed = store.get(accepted[2].submission_id)
    assert failed is not None and failed.status == "failed" and failed.error == "text_expired"
    assert store.redis.zcard(keys.LEASES) == 0 and store.redis.zcard(keys.PENDING) == 0


def test_the_reaper_requeues_the_posts_of_a_lost_batch_job_and_only_those(services: Services) -> None:
    """A worker that took a batch job off the queue and died before claiming it: its posts are re-queued, once."""
    accepted = accept_batch(services, "k", _items(BATCH_POSTS + 8, "lost"))
    queue = services.require_queue().moderation
    lost, waiting = queue.get_job_ids()
    queue.connection.lrem(keys.rq_queue(queue.name), 1, lost)  # taken, never claimed
    time.sleep(0.5)  # older than requeue_stale_after_s
    tally = Reaped()
    reap(services, tally, 0.2)
    jobs = _jobs(services)
    assert len(jobs) == 1 + BATCH_POSTS  # the waiting batch stays as it was; each lost post is a job of its own
    assert [a.submission_id for a in jobs[0]] == [a.submission_id for a in accepted[BATCH_POSTS:]]
    assert sorted(job[0].submission_id for job in jobs[1:]) == sorted(a.submission_id for a in accepted[:BATCH_POSTS])
    for job in jobs:
        moderate_batch(services, job)
    store = services.require_store()
    assert store.decisions_stored() == BATCH_POSTS + 8 and set(_decided(services).values()) == {1}
    assert waiting in queue.get_job_ids()  # still there: the runs above were in-process, not through RQ


def test_leases_of_a_running_batch_beat_and_are_released_together(services: Services) -> None:
    accepted = accept_batch(services, "k", _items(3, "lease"))
    [job] = _jobs(services)
    store = services.require_store()
    claimed = store.claim_many(job, 6)
    assert [c.submission_id for c in claimed] == [a.submission_id for a in accepted]
    assert all(c.body is not None and c.body.post_id.startswith("lease-") for c in claimed)
    ids = [c.submission_id for c in claimed]
    before = _leases(services)
    time.sleep(0.05)
    store.extend_leases(ids, 6)
    after = _leases(services)
    assert all(after[k] > before[k] for k in before) and len(after) == 3
    store.release_leases(ids)
    assert sorted(store.expired_leases(time.time())) == sorted(ids)  # the next reaper tick re-queues all three
    tally = Reaped()
    reap(services, tally, 0.2)
    assert tally.requeued == 3 and store.claim_many(job, 6) == []  # attempt 1 is no longer theirs
