"""Worker processes under real signals and a real Redis that goes away: they wait, reconnect and stop cleanly.

Each test that stops Redis has its own redis-server; workers are real ``moderation-service worker``
processes; every stop asserts exit code 0 (never a SIGKILL fallback).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moderation_service.config import QueueSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.store import Store
from tests.conftest import Api, Keys, make_api, settings_for
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, start_worker, stop_process, stop_workers, wait_for

# Only a guard against a hung process (the test fails then): on a loaded CI machine a job and a stop take longer.
GUARD_S = 60
QUEUE = QueueSettings(job_lease_s=6, requeue_stale_after_s=3, reaper_interval_s=0.2)


@dataclass
class Rig:
    """A Redis of this test's own (it may be stopped), an in-process API on it, and a worker log."""

    redis: RedisServer
    api: Api
    keys: Keys
    log: Path
    env: dict[str, str]
    started: list[Any] = field(default_factory=list)

    def worker(self, wait: bool = True, **env: str) -> Any:
        process = start_worker({**self.env, **env}, self.log, wait)
        self.started.append(process)
        return process

    def submit(self, client: TestClient, text: str, post_id: str) -> str:
        r = client.post("/v1/submissions", json={"text": text, "post_id": post_id})
        assert r.status_code == 202, r.text
        return str(r.json()["submission_id"])

    def status(self, client: TestClient, sub_id: str) -> dict[str, Any]:
        return dict(client.get(f"/v1/submissions/{sub_id}").json())

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def rig(tmp_path: Path, shared_pipeline: Pipeline, shared_rules: Path, keys: Keys) -> Iterator[Rig]:
    redis = RedisServer(tmp_path / "redis")
    env = {
        "MODERATION_REDIS_URL": redis.url,
        "MODERATION_RULES_DIR": str(shared_rules),
        "MODERATION_CLASSIFIERS": FAKE,
        "MODERATION_CLASSIFIER_TIMEOUT_S": "10",
        "MODERATION_JOB_LEASE_S": "6",
        "MODERATION_REQUEUE_STALE_AFTER_S": "3",
        "MODERATION_REAPER_INTERVAL_S": "0.2",
    }
    api = make_api(settings_for(shared_rules, keys, redis.url, queue=QUEUE), shared_pipeline)
    running = Rig(redis, api, keys, tmp_path / "worker.log", env)
    yield running
    stop_workers(running.started)  # those a failed test left running (each test asserts its own clean stops)
    redis.stop()


def test_worker_started_while_redis_is_down_waits_then_works(rig: Rig) -> None:
    worker = rig.worker()  # "worker ready": loaded, then it waits for Redis rather than exit
    assert wait_for(lambda: "Redis unreachable; waiting for it" in rig.log_text(), 20)
    assert worker.poll() is None
    rig.redis.start()
    with rig.api.client(rig.keys.submit_only) as c:
        sub_id = rig.submit(c, "hello, my knees are better today", "late-redis-1")
        assert wait_for(lambda: rig.status(c, sub_id)["status"] == "done", 60)
    assert "Redis reachable again" in rig.log_text()
    assert stop_process(worker) == 0


def test_busy_worker_survives_a_redis_restart_and_nothing_is_lost(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker()
    with rig.api.client(rig.keys.submit_only) as c:
        ids = [rig.submit(c, f"[fake sleep=0.3] post {i} about my flare-up", f"restart-{i}") for i in range(12)]
        assert wait_for(lambda: rig.status(c, ids[0])["status"] in ("running", "done"), 30)
        rig.redis.stop()  # mid-job: the job's writes fail, RQ's loop quits
        time.sleep(1.5)
        assert worker.poll() is None
        rig.redis.start()
        assert wait_for(lambda: all(rig.status(c, i)["status"] == "done" for i in ids), 120, interval=0.5)
    assert Store(rig.redis.client(), 3600, 3600).decisions_stored() == len(ids)
    assert worker.poll() is None
    assert stop_process(worker) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_idle_worker_stops_with_exit_0(rig: Rig, signum: int) -> None:
    rig.redis.start()
    worker = rig.worker()
    time.sleep(5)  # inside RQ's blocking dequeue, longer than the store's 3 s socket timeout
    assert stop_process(worker, timeout=GUARD_S, signum=signum) == 0
    assert "without a stop request" not in rig.log_text()  # the dequeue was not cut short by a time-out
    assert rig.log_text().count('"msg": "worker stopped"') == 1


def test_worker_waiting_for_redis_stops_with_exit_0(rig: Rig) -> None:
    worker = rig.worker()
    assert wait_for(lambda: "Redis unreachable; waiting for it" in rig.log_text(), 20)
    assert stop_process(worker, timeout=GUARD_S) == 0


def test_worker_stopped_while_loading_exits_0(rig: Rig) -> None:
    worker = rig.worker(wait=False)
    assert wait_for(lambda: '"msg": "worker loading"' in rig.log_text(), 60)  # rulebooks, grammars, models next
    assert stop_process(worker, timeout=GUARD_S) == 0


def test_busy_worker_finishes_its_job_then_exits_0(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker(MODERATION_WORKER_STOP_TIMEOUT_S="60")  # the job is finished, never released, however slow the machine
    with rig.api.client(rig.keys.submit_only) as c:
        sub_id = rig.submit(c, "[fake sleep=3] a slow post", "busy-1")
        assert wait_for(lambda: rig.status(c, sub_id)["status"] == "running", 30)
        assert stop_process(worker, timeout=GUARD_S) == 0
        result = rig.status(c, sub_id)
    assert result["status"] == "done" and result["attempt"] == 1  # finished by the stopping worker, not re-run


def test_job_outliving_the_stop_timeout_is_released_to_another_worker(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker(MODERATION_WORKER_STOP_TIMEOUT_S="1")
    with rig.api.client(rig.keys.submit_only) as c:
        sub_id = rig.submit(c, "[fake sleep=8] a very slow post", "release-1")
        assert wait_for(lambda: rig.status(c, sub_id)["status"] == "running", 30)
        assert stop_process(worker, timeout=GUARD_S) == 0  # released 1 s after SIGTERM, not after the job's 8 s
        assert rig.status(c, sub_id)["status"] != "done"
        assert "released to another worker" in rig.log_text()
        other = rig.worker()
        assert wait_for(lambda: rig.status(c, sub_id)["status"] == "done", 60)
        assert rig.status(c, sub_id)["attempt"] == 2
    assert stop_process(other) == 0


def _submit_batch(client: TestClient, texts: list[str], prefix: str) -> list[str]:
    items = [{"text": text, "post_id": f"{prefix}-{i}"} for i, text in enumerate(texts)]
    r = client.post("/v1/submissions/batch", json={"items": items})
    assert r.status_code == 202, r.text
    return [str(s["submission_id"]) for s in r.json()["submissions"]]


def test_busy_worker_finishes_its_batch_job_then_exits_0(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker(MODERATION_WORKER_STOP_TIMEOUT_S="60")
    with rig.api.client(rig.keys.submit_only) as c:
        ids = _submit_batch(c, [f"[fake sleep=0.7] slow post {i}" for i in range(4)], "busy-batch")  # one job
        assert wait_for(lambda: all(rig.status(c, i)["status"] == "running" for i in ids), 30)
        assert stop_process(worker, timeout=GUARD_S) == 0
        results = [rig.status(c, i) for i in ids]
    assert all(r["status"] == "done" and r["attempt"] == 1 for r in results)  # finished by the stopping worker
    assert Store(rig.redis.client(), 3600, 3600).decisions_stored() == len(ids)


def test_batch_job_outliving_the_stop_timeout_releases_every_post(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker(MODERATION_WORKER_STOP_TIMEOUT_S="1")
    with rig.api.client(rig.keys.submit_only) as c:
        ids = _submit_batch(c, ["[fake sleep=8] a very slow post", "quick one", "another quick one"], "release-batch")
        assert wait_for(lambda: all(rig.status(c, i)["status"] == "running" for i in ids), 30)
        assert stop_process(worker, timeout=GUARD_S) == 0  # released 1 s after SIGTERM, not after the job's 8 s
        assert all(rig.status(c, i)["status"] != "done" for i in ids)
        other = rig.worker()
        assert wait_for(lambda: all(rig.status(c, i)["status"] == "done" for i in ids), 90)
        assert all(rig.status(c, i)["attempt"] == 2 for i in ids)
    assert Store(rig.redis.client(), 3600, 3600).decisions_stored() == len(ids)
    assert stop_process(other) == 0


def test_busy_worker_survives_a_redis_restart_mid_batch_and_nothing_is_lost(rig: Rig) -> None:
    rig.redis.start()
    worker = rig.worker()
    with rig.api.client(rig.keys.submit_only) as c:
        ids = _submit_batch(c, [f"[fake sleep=0.2] post {i} about my flare-up" for i in range(40)], "restart-batch")  # 2 jobs
        assert wait_for(lambda: rig.status(c, ids[0])["status"] == "running", 30)
        rig.redis.stop()  # mid-batch: the batch's store fails, RQ's loop quits
        time.sleep(1.5)
        assert worker.poll() is None
        rig.redis.start()
        assert wait_for(lambda: all(rig.status(c, i)["status"] == "done" for i in ids), 120, interval=0.5)
    assert Store(rig.redis.client(), 3600, 3600).decisions_stored() == len(ids)
    assert stop_process(worker) == 0
