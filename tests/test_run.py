"""``moderation-service run`` as a real process: its children are supervised, its API is in /metrics, and
SIGTERM or SIGINT stops everything with exit code 0 and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.fake_classifier import FAKE
from tests.queue_support import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (from /proc), by pid: their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def redis_answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.3)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    redis_port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        token = (self.data_dir / "dev-api-key").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> set[int]:
        return {pid for pid, cmd in children(self.process.pid).items() if " worker " in cmd + " "}

    def redis(self) -> set[int]:
        return {pid for pid, cmd in children(self.process.pid).items() if "redis-server" in cmd}


def start_run(tmp: Path, workers: int) -> Run:
    port, redis_port, data_dir = free_port(), free_port(), tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "PROMETHEUS_"))}
    env.update({"MODERATION_CLASSIFIERS": FAKE, "MODERATION_JOB_LEASE_S": "6", "MODERATION_REAPER_INTERVAL_S": "0.2"})
    env["MODERATION_REQUEUE_STALE_AFTER_S"] = "3"
    log = tmp / "run.log"
    args = [sys.executable, "-m", "moderation_service", "run", "--port", str(port), "--redis-port", str(redis_port)]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*args, "--data-dir", str(data_dir), "--workers", str(workers)], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    run = Run(process, log, port, redis_port, data_dir)
    ready = wait_for(lambda: "  try: curl" in run.text() or process.poll() is not None, 300, interval=0.3)
    assert ready and process.poll() is None, run.text()[-3000:]
    return run


def stop_run(run: Run, signum: int) -> None:
    """The signal to ``run`` alone; it must exit 0 by itself and leave none of its children running."""
    before = children(run.process.pid)
    assert before, "run has no children to stop"
    run.process.send_signal(signum)
    try:
        code = run.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.process.kill()
        raise AssertionError(f"run did not stop within 60 s:\n{run.text()[-3000:]}") from None
    assert code == 0, run.text()[-3000:]
    assert wait_for(lambda: not any(alive(pid) for pid in before), 5), f"left running: {[p for p in before if alive(p)]}"
    assert run.text().rstrip().endswith("stopped API, worker(s) and Redis")


def submit_and_wait(c: httpx.Client, post_id: str) -> dict[str, object]:
    """Submit as a forum would (again after a 503, as its Retry-After says), then wait for the decision."""
    answers: list[httpx.Response] = []

    def accepted() -> bool:
        answers.append(c.post("/v1/submissions", json={"text": f"my hands ache today ({post_id})", "post_id": post_id}))
        return answers[-1].status_code != 503

    assert wait_for(accepted, 30, interval=1.0)
    r = answers[-1]
    assert r.status_code == 202, r.text
    sub_id = r.json()["submission_id"]
    result: dict[str, object] = {}

    def done() -> bool:
        result.update(c.get(f"/v1/submissions/{sub_id}").json())
        return result.get("status") in ("done", "failed")

    assert wait_for(done, 120, interval=0.3), result
    return result


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
