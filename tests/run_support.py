"""``moderation-service run`` as a real child process of a test, and what it started in turn (from /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from tests.fake_classifier import FAKE
from tests.queue_support import free_port, wait_for

__all__ = ["Run", "alive", "children", "redis_answers", "start_run", "stop_run", "submit_and_wait"]

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


def start_run(tmp: Path, workers: int, extra_env: dict[str, str] | None = None) -> Run:
    """``run`` with the fake classifier and short leases, returned once it has printed its key and curl line."""
    port, redis_port, data_dir = free_port(), free_port(), tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "PROMETHEUS_"))}
    env.update({"MODERATION_CLASSIFIERS": FAKE, "MODERATION_JOB_LEASE_S": "6", "MODERATION_REAPER_INTERVAL_S": "0.2"})
    env["MODERATION_REQUEUE_STALE_AFTER_S"] = "3"
    env.update(extra_env or {})
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
