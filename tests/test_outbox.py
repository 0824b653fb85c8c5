"""The outbox: a decision, its escalation and its webhook are written in one atomic step; a sync escalation
that the human queue did not get says so in the answer, and is counted for an alert. Real Redis throughout."""

from __future__ import annotations

import time
from pathlib import Path

from moderation_service.config import Settings
from moderation_service.core.pipeline import Pipeline
from moderation_service.service import PostIn
from moderation_service.store import QueuedDecision, Store, SubmissionIn, WebhookDue, connect
from tests.conftest import Keys, make_api, settings_for
from tests.queue_support import RedisServer

CRISIS = "I want to end my life"


def _store(redis_url: str) -> Store:
    return Store(connect(redis_url), 3600, 3600)


def _queued(pipeline: Pipeline, store: Store, text: str, post_id: str, callback: str | None) -> QueuedDecision:
    body = SubmissionIn(text=text, post_id=post_id, callback_url=callback)
    sub_id, created = store.create_submission("k1", body)
    assert created and store.claim(sub_id, 1, 30)
    decision = pipeline.moderate_batch([PostIn(text=text).to_post()])[0]
    return QueuedDecision(**dict(decision), submission_id=sub_id, post_id=post_id)


def test_decision_escalation_and_webhook_are_stored_together(shared_pipeline: Pipeline, redis_url: str) -> None:
    store = _store(redis_url)
    decision = _queued(shared_pipeline, store, CRISIS, "p-1", "https://forum.example.org/hook")
    assert decision.action.value == "escalate"
    assert store.complete(decision, webhook=True)
    # One call left all three: the decision, the open escalation, the first delivery (due now).
    assert store.get(decision.submission_id).status.value == "done"  # type: ignore[union-attr]
    [escalation] = store.open_escalations()
    assert escalation.id == decision.submission_id and escalation.post_id == "p-1" and "distress" in escalation.categories
    assert store.pop_due_webhooks(time.time()) == [WebhookDue(submission_id=decision.submission_id, attempt=1)]
    # A second run of the same job (a worker thought dead) stores nothing more.
    assert not store.complete(decision, webhook=True)
    assert len(store.open_escalations()) == 1 and store.pop_due_webhooks(time.time()) == []
    events = [e["event"] for e in store.audit_events()]
    assert events.count("decided") == 1 and events.count("escalated") == 1


def test_an_allow_decision_writes_no_escalation_and_no_webhook_without_callback(shared_pipeline: Pipeline, redis_url: str) -> None:
    store = _store(redis_url)
    decision = _queued(shared_pipeline, store, "Lovely weather for a walk today", "p-2", None)
    assert decision.action.value == "allow" and store.complete(decision)
    assert store.open_escalations() == [] and store.pop_due_webhooks(time.time()) == []


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_a_sync_escalation_says_plainly_when_the_human_queue_did_not_get_it(
    shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_server: RedisServer, redis_url: str
) -> None:
    settings: Settings = settings_for(shared_rules, keys, redis_url)
    api = make_api(settings, shared_pipeline)
    with api.client(keys.moderate) as c:
        up = c.post("/v1/moderate", json={"text": CRISIS}).json()
        calm = c.post("/v1/moderate", json={"text": "Lovely weather for a walk today"}).json()
        redis_server.stop()
        try:
            down = c.post("/v1/moderate", json={"text": CRISIS})
            metrics = c.get("/metrics").text
        finally:
            redis_server.start()
    assert up["action"] == "escalate" and up["escalation_recorded"] is True and up["decision_id"]
    assert calm["action"] == "allow" and calm["escalation_recorded"] is None
    # The decision still comes back (fail safe), and says the moderators' queue does not have it.
    assert down.status_code == 200
    assert down.json()["action"] == "escalate" and down.json()["escalation_recorded"] is False and down.json()["decision_id"] is None
    assert _metric(metrics, "moderation_escalations_unrecorded_total") == 1


def test_without_redis_every_sync_escalation_is_reported_unrecorded(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys) -> None:
    api = make_api(settings_for(shared_rules, keys), shared_pipeline)
    with api.client(keys.moderate) as c:
        answer = c.post("/v1/moderate", json={"text": CRISIS}).json()
        metrics = c.get("/metrics").text
    assert answer["action"] == "escalate" and answer["escalation_recorded"] is False
    assert 'moderation_escalations_unrecorded_total{reason="no_store"} 1.0' in metrics
