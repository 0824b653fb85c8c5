"""Chaos run: 2,000 posts through ``moderation-service run`` while its workers are killed and Redis crashes.

Nothing is restarted by hand: ``run``'s supervisor starts the killed children again, workers reconnect,
the reaper re-runs what a dead worker held, and the client re-sends a batch refused with 503 (as its
Retry-After says). The figures go to ``benchmarks/results/chaos.json`` (or ``$MODERATION_CHAOS_RESULTS``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import redis

from moderation_service.store import Store
from tests.queue_support import wait_for
from tests.run_support import Run, redis_answers, start_run, stop_run

ROOT = Path(__file__).resolve().parents[2]
POSTS = 2000
BATCH = 100
# After which batch each blow lands: a worker, Redis, then the other worker (each while the queue is full).
BLOWS = {4: "worker", 9: "redis", 14: "worker"}
RESULTS = Path(os.environ.get("MODERATION_CHAOS_RESULTS", ROOT / "benchmarks" / "results" / "chaos.json"))


def _send(c: httpx.Client, items: list[dict[str, str]], retries: Counter[str]) -> list[str]:
    """One batch, sent again after each 503 until accepted (idempotent by post_id, so nothing doubles)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            r = c.post("/v1/submissions/batch", json={"items": items})
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 202:
            return [s["submission_id"] for s in r.json()["submissions"]]
        assert r is None or r.status_code == 503, r.text
        assert time.monotonic() < deadline, "a batch was refused for two minutes"
        retries["batch_resent"] += 1
        time.sleep(1.0)


def _blow(run: Run, target: str, killed: set[int]) -> None:
    if target == "redis":
        [pid] = run.redis()
        os.kill(pid, signal.SIGKILL)
        return
    workers = sorted(run.workers() - killed)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    killed.add(victim)


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def test_2000_posts_with_redis_crashed_and_workers_killed_lose_and_double_nothing(tmp_path: Path) -> None:
    run = start_run(tmp_path, workers=2)
    started = time.monotonic()
    retries: Counter[str] = Counter()
    killed: set[int] = set()
    ids: list[str] = []
    try:
        with run.client() as c:
            for batch in range(POSTS // BATCH):
                items = [
                    {"text": f"post {batch * BATCH + i}: my joints ache in the cold", "post_id": f"chaos-{batch}-{i}"} for i in range(BATCH)
                ]
                ids += _send(c, items, retries)
                if batch in BLOWS:
                    _blow(run, BLOWS[batch], killed)
        accepted_s = time.monotonic() - started
        assert wait_for(lambda: redis_answers(run.redis_port), 60)
        store = Store(redis.Redis(port=run.redis_port), 3600, 3600)

        def statuses() -> Counter[str]:
            pipe = store.redis.pipeline(transaction=False)
            for sub_id in ids:
                pipe.hget(f"ms:sub:{sub_id}", "status")
            return Counter((s or b"missing").decode() for s in pipe.execute())

        finished = wait_for(lambda: sum(statuses()[s] for s in ("done", "failed")) == len(ids), 400, interval=1.0)
        drained_s = time.monotonic() - started
        final = statuses()
        decided = Counter(e["id"] for e in store.audit_events(count=100_000) if e.get("event") == "decided")
        requeued = sum(1 for e in store.audit_events(count=100_000) if e.get("event") == "requeued")
        log = run.text()
        figures = {
            "posts": POSTS,
            "accepted": len(set(ids)),
            "done": final["done"],
            "failed": final["failed"],
            "lost": POSTS - final["done"] - final["failed"],
            "duplicated": sum(n - 1 for n in decided.values() if n > 1) + max(0, store.decisions_stored() - len(decided)),
            "decisions_stored": store.decisions_stored(),
            "requeued_by_reaper": requeued,
            "batches_resent_after_503": retries["batch_resent"],
            "workers_killed": len(killed),
            "redis_crashes": 1,
            "restarts_by_supervisor": {
                "workers": len(re.findall(r"worker \d+ started again", log)),
                "redis": log.count("redis started again"),
            },
            "manual_restarts": 0,
            "seconds_to_accept_all": round(accepted_s, 1),
            "seconds_to_decide_all": round(drained_s, 1),
            "commit": _commit(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "python -m pytest -q tests/chaos",
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=1) + "\n")
        assert finished, figures
        assert figures["accepted"] == POSTS and len(ids) == POSTS, figures
        assert figures["lost"] == 0 and figures["failed"] == 0 and figures["duplicated"] == 0, figures
        assert figures["decisions_stored"] == POSTS, figures
        assert figures["restarts_by_supervisor"] == {"workers": 2, "redis": 1}, figures
    finally:
        if run.process.poll() is None:
            stop_run(run, signal.SIGTERM)
