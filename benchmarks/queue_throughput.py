"""End-to-end queue throughput: submissions accepted over HTTP until every decision is stored.

Run: ``.venv/bin/python benchmarks/queue_throughput.py``. Redis (AOF, appendfsync always), the API and
the workers share this machine's 2 cores. Compares RQ's SimpleWorker (jobs run in the process that
preloaded rulebooks and models) with the forking Worker (a fork per job), rules-only, and measures
the shipped configuration with the embedded model.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import words, write  # noqa: E402
from stack import start  # noqa: E402

N = int(os.environ.get("BENCH_SUBMISSIONS", "2000"))


def run(classifiers: str, workers: int, worker_class: str, n: int) -> float:
    stack = start(classifiers, redis=True)
    client = redis.Redis.from_url(stack.env["MODERATION_REDIS_URL"])
    try:
        stack.add_workers(workers, {"MODERATION_WORKER_CLASS": worker_class})
        time.sleep(3 if classifiers else 1.5)  # workers load their models before the clock starts
        headers = {"Authorization": f"Bearer {stack.token}"}
        text = words(50)
        started = time.perf_counter()
        with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as http:
            for offset in range(0, n, 500):
                items = [{"text": f"{text} {i}", "post_id": f"b-{i}"} for i in range(offset, min(n, offset + 500))]
                assert http.post("/v1/submissions/batch", json={"items": items}).status_code == 202
        while int(client.get("ms:stats:decisions_stored") or 0) < n:
            time.sleep(0.05)
            if time.perf_counter() - started > 900:
                raise RuntimeError("queue benchmark did not finish in 15 minutes")
        return round(n / (time.perf_counter() - started), 1)
    finally:
        client.close()
        stack.stop()


def main() -> None:
    rows = {
        "rules only, 1 SimpleWorker": run("", 1, "simple", N),
        "rules only, 1 forking Worker": run("", 1, "fork", max(200, N // 5)),
        "rules only, 2 SimpleWorkers": run("", 2, "simple", N),
        "rules + embedded model, 1 SimpleWorker": run("embedded", 1, "simple", max(200, N // 4)),
        "rules + embedded model, 2 SimpleWorkers": run("embedded", 2, "simple", max(200, N // 4)),
    }
    md = ["## Queue: submissions per second, end to end (HTTP batch submit -> stored decision)", "",
          "| configuration | submissions/s |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows.items()]  # fmt: skip
    write("queue_throughput", {"submissions_per_s": rows, "submissions": N}, "\n".join(md) + "\n")
    sys.stdout.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
