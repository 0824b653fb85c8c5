"""Queued ingest with a real redis-server (emptied per test), real worker processes, and the API in-process."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moderation_service.config import QueueSettings, WebhookSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.errors import StoreUnavailable
from moderation_service.store import Store, SubmissionIn, SubmissionStatus, connect
from moderation_service.webhooks import verify
from tests.conftest import Api, Keys, make_api, settings_for
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, free_port, start_worker, stop_workers, wait_for

SECRET = "test-webhook-secret-0123456789abcdef-new"  # the current key: 32+ bytes
PREVIOUS = "test-webhook-secret-0123456789abcdef-old"  # mid-rotation: webhooks carry both signatures
RECEIVER_PORT = free_port()  # the one origin callbacks may reach: scheme, host and port
RECEIVER = f"http://127.0.0.1:{RECEIVER_PORT}"
# A lease of a few heartbeats (one per lease/3): short, so a killed worker's job is re-run soon, yet long enough
# that a heartbeat delayed by an oversubscribed CI machine does not look like a dead worker.
QUEUE = QueueSettings(job_lease_s=6, requeue_stale_after_s=3, reaper_interval_s=0.2)
WEBHOOKS = WebhookSettings(
    secret=SECRET,
    previous_secret=PREVIOUS,
    callback_allowed_hosts=[RECEIVER],
    callback_allowed_networks=["127.0.0.1/32"],
    backoff_base_s=0.3,
    backoff_max_s=1.0,
    max_attempts=30,
)


@dataclass
class Workers:
    env: dict[str, str]
    processes: list[Any]
    log: Path

    def add(self, wait: bool = True) -> Any:
        worker = start_worker(self.env, self.log, wait)
        self.processes.append(worker)
        return worker


@dataclass
class Stack:
    redis: RedisServer
    api: Api
    workers: Workers
    keys: Keys

    def add_worker(self, wait: bool = True) -> Any:
        return self.workers.add(wait)

    def store(self) -> Store:
        return Store(self.redis.client(), 3600, 3600)

    def submitter(self) -> TestClient:
        return self.api.client(self.keys.submit_only)

    def wait_done(self, client: TestClient, sub_id: str, timeout: float = 30) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def done() -> bool:
            result.update(client.get(f"/v1/submissions/{sub_id}").json())
            return result.get("status") in ("done", "failed")

        assert wait_for(done, timeout), result
        return result


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, shared_rules: Path) -> Iterator[Workers]:
    """Real worker processes for the module; each test starts on an emptied Redis."""
    env = {
        "MODERATION_REDIS_URL": redis_server.url,
        "MODERATION_RULES_DIR": str(shared_rules),
        "MODERATION_CLASSIFIERS": FAKE,
        "MODERATION_CLASSIFIER_TIMEOUT_S": "10",
        "MODERATION_JOB_LEASE_S": "6",
        "MODERATION_REQUEUE_STALE_AFTER_S": "3",
        "MODERATION_REAPER_INTERVAL_S": "0.2",
        "MODERATION_WEBHOOK_SECRET": SECRET,
        "MODERATION_WEBHOOK_PREVIOUS_SECRET": PREVIOUS,
        "MODERATION_CALLBACK_ALLOWED_HOSTS": RECEIVER,
        "MODERATION_CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "MODERATION_WEBHOOK_BACKOFF_BASE_S": "0.3",
        "MODERATION_WEBHOOK_BACKOFF_MAX_S": "1.0",
        "MODERATION_WEBHOOK_MAX_ATTEMPTS": "30",
    }
    running = Workers(env, [], tmp_path_factory.mktemp("queue") / "worker.log")
    running.add()
    yield running
    stop_workers(running.processes)


@pytest.fixture
def stack(redis_server: RedisServer, redis_url: str, workers: Workers, shared_pipeline: Pipeline, shared_rules: Path, keys: Keys) -> Stack:
    settings = settings_for(shared_rules, keys, redis_url, queue=QUEUE, webhooks=WEBHOOKS)
    return Stack(redis_server, make_api(settings, shared_pipeline), workers, keys)


def test_submit_poll_idempotency_and_conflict(stack: Stack) -> None:
    with stack.submitter() as c:
        first = c.post("/v1/submissions", json={"text": "you idiot", "post_id": "idem-1"})
        again = c.post("/v1/submissions", json={"text": "you idiot", "post_id": "idem-1"})
        changed = c.post("/v1/submissions", json={"text": "you lovely person", "post_id": "idem-1"})
        assert first.status_code == 202 and again.status_code == 200
        assert again.json()["submission_id"] == first.json()["submission_id"]
        assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict"
        result = stack.wait_done(c, first.json()["submission_id"])
    assert result["status"] == "done" and result["decision"]["action"] == "hold"
    assert result["decision"]["reasons"][0]["id"] == "harassment.insult"


def test_post_id_is_required_and_scope_enforced(stack: Stack) -> None:
    with stack.submitter() as c:
        assert c.post("/v1/submissions", json={"text": "hi"}).status_code == 422
    with stack.api.client(stack.keys.moderate) as c:
        assert c.post("/v1/submissions", json={"text": "hi", "post_id": "x"}).status_code == 403


def test_callback_to_a_host_not_allow_listed_is_refused(stack: Stack) -> None:
    with stack.submitter() as c:
        r = c.post("/v1/submissions", json={"text": "hi", "post_id": "cb-1", "callback_url": "http://169.254.169.254/latest"})
        internal = c.post("/v1/submissions", json={"text": "hi", "post_id": "cb-2", "callback_url": "http://localhost:6379/"})
        other_port = c.post(
            "/v1/submissions", json={"text": "hi", "post_id": "cb-3", "callback_url": f"http://127.0.0.1:{stack.redis.port}/"}
        )
        other_scheme = c.post(
            "/v1/submissions", json={"text": "hi", "post_id": "cb-4", "callback_url": f"https://127.0.0.1:{RECEIVER_PORT}/"}
        )
        allowed = c.post("/v1/submissions", json={"text": "hi", "post_id": "cb-5", "callback_url": f"{RECEIVER}/hook"})
    assert r.status_code == 422 and "allow-list" in r.json()["detail"]
    assert internal.status_code == 422
    # The allowed host on Redis's port (or another scheme) is not the allowed origin.
    assert other_port.status_code == 422 and "allow-list" in other_port.json()["detail"]
    assert other_scheme.status_code == 422
    assert allowed.status_code == 202


def test_escalation_queue_ack_and_feedback(stack: Stack, tmp_path: Path) -> None:
    with stack.submitter() as c:
        sub = c.post("/v1/submissions", json={"text": "I want to end my life", "post_id": "esc-1"}).json()
        stack.wait_done(c, sub["submission_id"])
    with stack.api.client(stack.keys.admin) as admin:
        assert admin.get("/v1/escalations").status_code == 403  # moderator is its own scope
    with stack.api.client(stack.keys.moderator) as m:
        listing = m.get("/v1/escalations", params={"status": "open"}).json()["escalations"]
        mine = [e for e in listing if e["id"] == sub["submission_id"]]
        assert mine and mine[0]["priority"] == "normal" and mine[0]["age_seconds"] >= 0 and "distress" in mine[0]["categories"]
        ages = [e["created_at"] for e in listing]
        assert ages == sorted(ages)  # oldest first
        assert m.post(f"/v1/escalations/{sub['submission_id']}/ack").status_code == 200
        assert sub["submission_id"] not in [e["id"] for e in m.get("/v1/escalations").json()["escalations"]]
        fb = m.post(
            f"/v1/decisions/{sub['submission_id']}/feedback",
            json={"outcome": "upheld", "final_action": "escalate", "categories": ["distress"], "note": "checked in with member"},
        )
        assert fb.status_code == 201
        assert m.post("/v1/decisions/nope/feedback", json={"outcome": "upheld", "final_action": "allow"}).status_code == 404
    from typer.testing import CliRunner

    from moderation_service.cli import app

    out = tmp_path / "feedback.csv"
    result = CliRunner().invoke(
        app, ["feedback", "export", "-o", str(out), "--format", "csv"], env={"MODERATION_REDIS_URL": stack.redis.url}
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "decision_id" in text.splitlines()[0] and sub["submission_id"] in text and "upheld" in text


def test_worker_killed_mid_job_still_ends_done_once(stack: Stack) -> None:
    store = stack.store()
    before = store.decisions_stored()
    with stack.submitter() as c:
        sub = c.post("/v1/submissions", json={"text": "[fake sleep=4] a slow one", "post_id": "kill-1"}).json()
        assert wait_for(lambda: c.get(f"/v1/submissions/{sub['submission_id']}").json()["status"] == "running", 20)
        victim = stack.workers.processes.pop(0)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        stack.add_worker(wait=False)  # it joins while the test goes on
        result = stack.wait_done(c, sub["submission_id"], timeout=90)  # a bound: the new worker loads first
    assert result["status"] == "done" and result["attempt"] == 2
    assert store.decisions_stored() - before == 1


def test_worker_killed_mid_batch_job_ends_every_post_done_once(stack: Stack) -> None:
    """A batch job is claimed whole and stored whole: a worker killed between the two loses none of its posts."""
    store = stack.store()
    before = store.decisions_stored()
    with stack.submitter() as c:
        # 12 s of work in one job: still running when the kill lands, however slowly a loaded machine polls.
        items = [{"text": f"[fake sleep=3] slow post {i}", "post_id": f"kill-batch-{i}"} for i in range(4)]
        r = c.post("/v1/submissions/batch", json={"items": items})
        assert r.status_code == 202
        ids = [s["submission_id"] for s in r.json()["submissions"]]
        assert wait_for(lambda: all(c.get(f"/v1/submissions/{i}").json()["status"] == "running" for i in ids), 20)
        while stack.workers.processes:  # whichever worker holds the batch
            victim = stack.workers.processes.pop()
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
        stack.add_worker(wait=False)
        results = [stack.wait_done(c, i, timeout=150) for i in ids]  # a bound: the new worker loads first
    assert all(r["status"] == "done" and r["attempt"] == 2 for r in results)
    assert store.decisions_stored() - before == len(ids)
    decided = Counter(e["id"] for e in store.audit_events(5000) if e.get("event") == "decided")
    assert all(decided[i] == 1 for i in ids)


def test_thousand_submissions_two_workers_one_killed(stack: Stack) -> None:
    store = stack.store()
    before = store.decisions_stored()
    stack.add_worker(wait=False)  # it joins while the test goes on
    ids: list[str] = []
    with stack.submitter() as c:
        for batch in range(2):
            items = [{"text": f"post number {batch * 500 + i} about my arthritis", "post_id": f"bulk-{batch}-{i}"} for i in range(500)]
            r = c.post("/v1/submissions/batch", json={"items": items})
            assert r.status_code == 202
            ids += [s["submission_id"] for s in r.json()["submissions"]]
            if batch == 0:
                time.sleep(0.5)
                victim = stack.workers.processes.pop(0)
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                time.sleep(0.5)
                stack.add_worker(wait=False)  # it joins while the test goes on
    assert len(set(ids)) == 1000
    assert wait_for(lambda: store.decisions_stored() - before >= 1000, 300, interval=0.5)  # a bound, not a speed check
    time.sleep(4)  # leases of jobs in flight at the kill run out and are re-run: still no duplicate
    statuses = [store.get(i) for i in ids]
    assert all(s is not None and s.status is SubmissionStatus.done for s in statuses)
    assert store.decisions_stored() - before == 1000


def test_redis_outage_503_then_nothing_lost(stack: Stack) -> None:
    accepted: list[str] = []
    refused: list[Any] = []
    with stack.submitter() as c:
        for i in range(20):
            accepted.append(c.post("/v1/submissions", json={"text": f"before {i}", "post_id": f"out-a-{i}"}).json()["submission_id"])
        stack.redis.stop()
        for i in range(5):
            r = c.post("/v1/submissions", json={"text": f"during {i}", "post_id": f"out-b-{i}"})
            refused.append(r)
        stack.redis.start()
        for i in range(20):
            r = c.post("/v1/submissions", json={"text": f"after {i}", "post_id": f"out-c-{i}"})
            assert r.status_code == 202
            accepted.append(r.json()["submission_id"])
        for sub_id in accepted:
            assert stack.wait_done(c, sub_id, timeout=60)["status"] == "done"
    assert all(r.status_code == 503 and r.headers["retry-after"] == "5" for r in refused)
    assert all(r.json()["code"] == "store_unavailable" for r in refused)


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[bytes, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((body, self.headers["X-Moderation-Signature"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhook_receiver_down_then_up(stack: Stack) -> None:
    port = RECEIVER_PORT
    with stack.submitter() as c:
        sub = c.post(
            "/v1/submissions", json={"text": "you idiot", "post_id": "hook-1", "callback_url": f"http://127.0.0.1:{port}/hook"}
        ).json()
        assert wait_for(lambda: (c.get(f"/v1/submissions/{sub['submission_id']}").json().get("webhook") or {}).get("attempts", 0) >= 2, 30)
        receiver = http.server.HTTPServer(("127.0.0.1", port), _Receiver)
        thread = threading.Thread(target=receiver.serve_forever, daemon=True)
        thread.start()
        try:
            assert wait_for(lambda: c.get(f"/v1/submissions/{sub['submission_id']}").json()["webhook"]["status"] == "delivered", 30)
        finally:
            receiver.shutdown()
            receiver.server_close()
    body, header = _Receiver.received[-1]
    assert verify(SECRET, body, header)
    t = header.split(",")[0].split("=")[1]
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    # Mid-rotation: the current key's signature first, then the previous key's; a receiver with either accepts it.
    assert header.split(",")[1] == f"v1={expected}" and len(header.split(",")) == 3
    assert verify(PREVIOUS, body, header)
    payload = json.loads(body)
    assert payload["submission_id"] == sub["submission_id"] and payload["action"] == "hold"
    assert not verify("wrong-secret-000000000", body, header)


def test_text_expires_but_record_and_audit_stay(stack: Stack) -> None:
    """The text key carries the short TTL; the record and the audit trail (which never hold text) stay."""
    store = Store(stack.redis.client(), text_ttl_s=1, record_ttl_s=3600)
    sub_id, created = store.create_submission("k1", SubmissionIn(text="Quokka-secret-text", post_id="ttl-1"))
    assert created and store.body(sub_id) is not None
    time.sleep(2.1)
    assert store.body(sub_id) is None and store.get(sub_id) is not None
    dump = json.dumps(store.audit_events(5000))
    assert "Quokka" not in dump and sub_id in dump


def test_store_unreachable_is_reported_not_raised_raw() -> None:
    store = Store(connect(f"redis://127.0.0.1:{free_port()}/0"), 60, 60)
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.create_submission("k", SubmissionIn(text="x", post_id="p"))


@pytest.mark.parametrize(
    ("text", "locale", "level", "publish"),
    [
        ("I can't do this anymore, I've got my tablets saved up", "en-GB", "imminent", False),
        ("ya no quiero vivir, tengo las pastillas preparadas", "es-ES", "imminent", False),
        ("Honestly everyone would be better off without me", "en-GB", "high", True),
        ("I want to die of embarrassment lol", "en-GB", "none", True),
    ],
)
def test_crisis_posts_through_the_queue(stack: Stack, text: str, locale: str, level: str, publish: bool) -> None:
    with stack.submitter() as c:
        sub = c.post("/v1/submissions", json={"text": text, "locale": locale, "post_id": f"crisis-{hash(text)}"}).json()
        decision = stack.wait_done(c, sub["submission_id"])["decision"]
    assert decision["distress_level"] == level and decision["publish"] is publish
    if level == "imminent":
        assert decision["priority"] == "urgent" and decision["signposting"]["resources"][0]["id"].startswith("emergency")


def test_records_written_before_the_typed_forms_are_still_read(redis_url: str) -> None:
    """Retries and escalations already in Redis at upgrade keep working (``sub:attempt`` and comma lists)."""
    from moderation_service.store import WebhookDue, keys

    store = Store(connect(redis_url), 60, 3600)
    store.redis.zadd(keys.WEBHOOKS_DUE, {"abc:3": 0})
    assert store.pop_due_webhooks(time.time()) == [WebhookDue(submission_id="abc", attempt=3)]
    legacy = {"priority": "urgent", "post_id": "", "categories": "distress,harassment", "created_at": time.time(), "status": "open"}
    store.redis.hset(keys.escalation("d1"), mapping=legacy)  # type: ignore[arg-type]
    store.redis.zadd(keys.ESCALATIONS_OPEN, {"d1": time.time()})
    [escalation] = store.open_escalations()
    assert escalation.categories == ["distress", "harassment"] and escalation.priority == "urgent"
