"""``moderation-service run`` as a real process: its children are supervised, its API is in /metrics, and
SIGTERM or SIGINT stops everything with exit code 0 and no process left behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.queue_support import wait_for
from tests.run_support import Run, redis_answers, start_run, stop_run, submit_and_wait


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    running = start_run(tmp_path, workers=2)
    yield running
    if running.process.poll() is None:
        stop_run(running, signal.SIGTERM)


def test_api_series_are_in_metrics_under_run(run: Run) -> None:
    with run.client() as c:
        assert c.post("/v1/moderate", json={"text": "hello all"}).status_code == 200
        submit_and_wait(c, "metrics-1")  # counted by a worker process
        text = c.get("/metrics").text
    assert 'moderation_http_requests_total{method="POST",route="/v1/moderate",status="200"}' in text
    assert 'moderation_decisions_total{action="allow"} 2.0' in text  # the API's decision and the worker's, one folder
    stop_run(run, signal.SIGTERM)


def test_killed_worker_and_killed_redis_are_started_again(run: Run) -> None:
    workers = run.workers()
    assert len(workers) == 2 and len(run.redis()) == 1
    with run.client() as c:
        first = submit_and_wait(c, "before-kills")
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(run.workers() - workers) == 1 and len(run.workers()) == 2, 60)
        [old_redis] = run.redis()
        os.kill(old_redis, signal.SIGKILL)
        assert wait_for(lambda: bool(run.redis()) and run.redis() != {old_redis} and redis_answers(run.redis_port), 60)
        assert submit_and_wait(c, "after-kills")["status"] == "done"
        # Redis came back from its append-only file: the earlier decision is still there.
        assert c.get(f"/v1/submissions/{first['submission_id']}").json()["status"] == "done"
    assert "worker 1 exited" in run.text() or "worker 2 exited" in run.text()
    assert "redis exited with code -9; starting it again" in run.text()
    stop_run(run, signal.SIGTERM)


def test_sigint_stops_everything_with_exit_0(tmp_path: Path) -> None:
    running = start_run(tmp_path, workers=1)
    with running.client() as c:
        submit_and_wait(c, "sigint-1")
    stop_run(running, signal.SIGINT)
