"""End-to-end queue throughput and latency: posts accepted over HTTP (batch submit) until each decision is stored.

Run: ``nice -n 10 .venv/bin/python benchmarks/queue_throughput.py`` (about 3 min on 2 cores), or with
``BENCH_SHORT=1`` for a smoke run (under a minute). Redis (AOF, appendfsync always), the API, the workers
and this client share the machine. Each configuration (rules-only and with the embedded model, 1 and 2
workers; rules-only once with RQ's forking Worker, and once with one post per request, so every job
carries one post and pays RQ's per-job bookkeeping alone) is measured twice:

* **drain**: every post submitted at once (batches of 100, one client), posts/s = posts / (last decision
  stored - first batch sent); CPU seconds per post of the API, the workers and Redis over that window;
* **paced**: posts sent at half the drained rate (a batch every 50 ms) for a few seconds; p50/p99 of
  submit-to-decision latency (batch sent -> decision stored, both read from this machine's clock).

Foreign load, CPU used by processes outside the stack and this client during each window, is recorded
beside every row: the machine may be shared, and a row measured beside a busy neighbour reads low.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, words, write  # noqa: E402
from stack import Stack, start  # noqa: E402

SHORT = os.environ.get("BENCH_SHORT") == "1"
RULES_POSTS = int(os.environ.get("BENCH_SUBMISSIONS", "600" if SHORT else "6000"))
MODEL_POSTS = max(100, RULES_POSTS // 4)
PACED_S = 2.0 if SHORT else 6.0
SUBMIT_BATCH = 100
ONLY = os.environ.get("BENCH_ONLY", "")  # run only the configurations whose name contains this
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included) and of its children that ended (a forking
    worker's work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def _busy_s() -> float:
    """CPU seconds every core has spent busy since boot (all processes)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class Meter:
    """CPU of the stack's parts, of this client, and of everything else, over one window."""

    stack: Stack
    redis_pid: int

    def read(self) -> dict[str, float]:
        api = sum(_cpu_s(p.pid) for p in self.stack.processes if p.pid != self.redis_pid)
        workers = sum(_cpu_s(p.pid) for p in self.stack.workers)
        times = os.times()
        return {
            "api": api,
            "workers": workers,
            "redis": _cpu_s(self.redis_pid),
            "client": times.user + times.system,
            "busy": _busy_s(),
            "wall": time.perf_counter(),
        }

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float], posts: int) -> dict[str, Any]:
        d = {k: after[k] - before[k] for k in before}
        ours = d["api"] + d["workers"] + d["redis"] + d["client"]
        return {
            "cpu_ms_per_post": {k: round(1000 * d[k] / posts, 3) for k in ("api", "workers", "redis", "client")},
            "foreign_load_cores": round(max(0.0, d["busy"] - ours) / d["wall"], 2),
        }


def _send(http: httpx.Client, items: list[dict[str, str]], single: bool = False) -> list[tuple[float, str]]:
    """(sent at, submission id) per post: one batch request, or one request per post (``single``)."""
    if single:
        out = []
        for item in items:
            sent = time.time()
            r = http.post("/v1/submissions", json=item)
            assert r.status_code == 202, r.text
            out.append((sent, r.json()["submission_id"]))
        return out
    sent = time.time()
    r = http.post("/v1/submissions/batch", json={"items": items})
    assert r.status_code == 202, r.text
    return [(sent, s["submission_id"]) for s in r.json()["submissions"]]


def _wait_stored(client: redis.Redis, n: int) -> None:
    deadline = time.monotonic() + 900
    while int(client.get("ms:stats:decisions_stored") or 0) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("the queue did not drain in 15 minutes")
        time.sleep(0.01)


def _done_at(client: redis.Redis, ids: list[str]) -> list[float]:
    pipe = client.pipeline(transaction=False)
    for sub_id in ids:
        pipe.hget(f"ms:sub:{sub_id}", "updated_at")
    return [float(v) for v in pipe.execute()]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def pipeline_cpu_ms(classifiers: str, n: int = 200) -> float:
    """CPU milliseconds per post of the pipeline alone (no HTTP, no queue), on the benchmark's posts, in this process:
    the part of a worker's CPU that batching cannot share out."""
    from moderation_service import bootstrap
    from moderation_service.core.post import PostIn

    os.environ["MODERATION_CLASSIFIERS"] = classifiers
    settings = bootstrap.load_settings()
    pipeline = bootstrap.build_pipeline(settings, crisis=bootstrap.build_crisis(settings.rules.rules_dir, warm_in_background=False))
    try:
        text = words(50)
        posts = [PostIn(text=f"{text} {i}").to_post() for i in range(n + 20)]
        for post in posts[:20]:
            pipeline.moderate_batch([post])
        started = time.process_time()
        for post in posts[20:]:
            pipeline.moderate_batch([post])  # one at a time, as the worker runs them
        return round(1000 * (time.process_time() - started) / n, 3)
    finally:
        pipeline.close()


def run(classifiers: str, workers: int, posts: int, worker_class: str = "simple", single: bool = False) -> dict[str, Any]:
    stack = start(classifiers, redis=True)
    client = redis.Redis.from_url(stack.env["MODERATION_REDIS_URL"])
    redis_pid = stack.processes[0].pid
    meter = Meter(stack, redis_pid)
    text = words(50)
    try:
        stack.add_workers(workers, {"MODERATION_WORKER_CLASS": worker_class})
        deadline = time.monotonic() + 180
        while int(client.scard("rq:workers")) < workers:  # RQ registers a worker once it has loaded everything
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {stack.token}"}
        with httpx.Client(base_url=stack.url, headers=headers, timeout=120) as http:
            _send(http, [{"text": f"{text} warm {i}", "post_id": f"w-{i}"} for i in range(20)])  # first-request costs
            _wait_stored(client, 20)
            before = meter.read()
            for offset in range(0, posts, SUBMIT_BATCH):
                items = [{"text": f"{text} {i}", "post_id": f"d-{i}"} for i in range(offset, min(posts, offset + SUBMIT_BATCH))]
                _send(http, items, single)
            _wait_stored(client, 20 + posts)
            after = meter.read()
            rate = posts / (after["wall"] - before["wall"])  # first batch sent -> last decision stored (polled every 10 ms)
            drained = {"posts": posts, "posts_per_s": round(rate, 1), **Meter.used(before, after, posts)}

            paced_rate = max(2.0, rate / 2)
            per_tick = max(1, round(paced_rate * 0.05))
            interval = per_tick / paced_rate
            sent: list[tuple[float, str]] = []
            ticks = 0
            stored_before = 20 + posts
            before = meter.read()
            t0, i = time.perf_counter(), 0
            while time.perf_counter() - t0 < PACED_S:
                items = [{"text": f"{text} p{i + k}", "post_id": f"p-{i + k}"} for k in range(per_tick)]
                i += per_tick
                sent += _send(http, items, single)
                ticks += 1
                pause = t0 + ticks * interval - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            _wait_stored(client, stored_before + i)
            after = meter.read()
        done = _done_at(client, [sub_id for _, sub_id in sent])
        latencies = [finished - at for (at, _), finished in zip(sent, done, strict=True)]
        paced = {
            "posts": i,
            "offered_posts_per_s": round(paced_rate, 1),
            "p50_ms": _pct(latencies, 0.50),
            "p99_ms": _pct(latencies, 0.99),
            "mean_ms": round(1000 * statistics.fmean(latencies), 1),
            "foreign_load_cores": Meter.used(before, after, i)["foreign_load_cores"],
        }
        return {"drain": drained, "paced": paced}
    finally:
        client.close()
        stack.stop()


def plot(rows: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.barh(names, [rows[n]["drain"]["posts_per_s"] for n in names])
    left.set(title="Drain: posts/s, HTTP batch submit -> stored decision", xlabel="posts/s")
    right.barh(names, [rows[n]["paced"]["p99_ms"] for n in names], label="p99")
    right.barh(names, [rows[n]["paced"]["p50_ms"] for n in names], label="p50")
    right.set(title="Paced at half that rate: submit -> decision", xlabel="ms")
    right.set_yticklabels([])
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "queue_throughput.png", dpi=80)


def main() -> None:
    configs: dict[str, tuple[Any, ...]] = {
        "rules only, 1 worker": ("", 1, RULES_POSTS, "simple"),
        "rules only, 2 workers": ("", 2, RULES_POSTS, "simple"),
        "rules only, 1 forking worker": ("", 1, max(100, RULES_POSTS // 10), "fork"),
        "rules only, 1 worker, one post per request (jobs of one)": ("", 1, max(100, RULES_POSTS // 6), "simple", True),
        "rules + embedded model, 1 worker": ("embedded", 1, MODEL_POSTS, "simple"),
        "rules + embedded model, 2 workers": ("embedded", 2, MODEL_POSTS, "simple"),
    }
    rows = {}
    alone: dict[str, float] = {}
    cores = os.cpu_count() or 1
    for name, config in configs.items():
        if ONLY not in name:
            continue
        classifiers = config[0]
        row = run(*config)
        if classifiers not in alone:
            alone[classifiers] = pipeline_cpu_ms(classifiers)
        cpu = row["drain"]["cpu_ms_per_post"]
        service_ms = cpu["api"] + cpu["workers"] + cpu["redis"]
        row["pipeline_alone_cpu_ms_per_post"] = alone[classifiers]
        row["queue_cpu_ms_per_post"] = round(service_ms - alone[classifiers], 3)  # API, RQ, Redis and glue around the pipeline
        row["cpu_bound_posts_per_s"] = round(1000 * cores / service_ms, 1)  # every core busy with this stack and nothing else
        rows[name] = row
        sys.stdout.write(f"{name}: {row}\n")
    md = [
        "## Queue: HTTP batch submit -> stored decision" + (" (short smoke run)" if SHORT else ""),
        "",
        "Drain: every post submitted at once. Paced: posts offered at half the drained rate; latency is batch sent -> decision stored.",
        "CPU is milliseconds per post; foreign load is CPU used outside the stack and the client during the window (cores).",
        "",
        "Pipeline alone: the worker's rules/grammars/model CPU per post measured without HTTP or queue; queue CPU: the",
        "rest of API + worker + Redis CPU per post. CPU bound: cores / (API + worker + Redis CPU per post).",
        "",
        "| configuration | posts/s | CPU bound | API CPU | worker CPU | Redis CPU | pipeline alone | queue CPU | client CPU | foreign load |"
        " paced at | p50 ms | p99 ms | foreign load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        d, p, cpu = row["drain"], row["paced"], row["drain"]["cpu_ms_per_post"]
        md.append(
            f"| {name} | {d['posts_per_s']} | {row['cpu_bound_posts_per_s']} | {cpu['api']} | {cpu['workers']} | {cpu['redis']} | "
            f"{row['pipeline_alone_cpu_ms_per_post']} | {row['queue_cpu_ms_per_post']} | {cpu['client']} | {d['foreign_load_cores']} | "
            f"{p['offered_posts_per_s']}/s | {p['p50_ms']} | {p['p99_ms']} | {p['foreign_load_cores']} |"
        )
    command = ("BENCH_SHORT=1 " if SHORT else "") + "nice -n 10 .venv/bin/python benchmarks/queue_throughput.py"
    write("queue_throughput", {"short": SHORT, "command": command, "rows": rows}, "\n".join(md) + "\n")
    plot(rows)
    sys.stdout.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
