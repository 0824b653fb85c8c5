"""API latency under concurrency, sync moderation and the Coral path, against 127.0.0.1 only.

Run: ``.venv/bin/python benchmarks/api_load.py``. A bounded asyncio httpx load generator runs in this
process, the API in another (one uvicorn worker, embedded model, one ONNX thread) on the same
2 cores, so the generator competes with the server: numbers are conservative.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import words, write  # noqa: E402
from stack import start  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
CORAL_SECRET = "bench-coral-secret-0123456789"


async def load(url: str, concurrency: int, total: int, make: Callable[[int], tuple[str, str, dict[str, Any]]]) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            method, path, kwargs = make(i)
            start = time.perf_counter()
            try:
                response = await client.request(method, path, **kwargs)
                ok = response.status_code < 300
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            errors += not ok

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "requests_per_s": round(total / elapsed, 1),
    }


def main() -> None:
    stack = start("embedded", redis=False, extra_env={"MODERATION_CORAL_SECRETS": json.dumps({"t1": [CORAL_SECRET]})})
    headers = {"Authorization": f"Bearer {stack.token}"}
    texts = [words(50 + (i % 7) * 3) for i in range(64)]

    def moderate(i: int) -> tuple[str, str, dict[str, object]]:
        return "POST", "/v1/moderate", {"json": {"text": texts[i % len(texts)]}, "headers": headers}

    def coral(i: int) -> tuple[str, str, dict[str, object]]:
        body = json.dumps({"action": "NEW", "comment": {"body": texts[i % len(texts)], "parentID": None},
                           "author": {"id": "a", "role": "COMMENTER"}, "story": {"id": "s", "url": "https://example.org/s"},
                           "site": {"id": "x"}, "tenantID": "t1", "tenantDomain": "example.org"}).encode()  # fmt: skip
        signature = "sha256=" + hmac.new(CORAL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return "POST", "/integrations/coral/moderation-phase", {"content": body, "headers": {"X-Coral-Signature": signature}}

    def perspective(i: int) -> tuple[str, str, dict[str, object]]:
        body = {"comment": {"text": texts[i % len(texts)]}, "requestedAttributes": {"TOXICITY": {}, "THREAT": {}}}
        return "POST", "/v1alpha1/comments:analyze", {"json": body, "params": {"key": stack.token}}

    rows: dict[str, dict[str, float]] = {}
    try:
        asyncio.run(load(stack.url, 4, 40, moderate))  # warm-up
        for concurrency in (1, 8, 32, 64):
            rows[f"/v1/moderate, {concurrency} concurrent"] = asyncio.run(load(stack.url, concurrency, REQUESTS, moderate))
        rows["Coral moderation phase, 32 concurrent"] = asyncio.run(load(stack.url, 32, REQUESTS, coral))
        rows["Perspective comments:analyze, 32 concurrent"] = asyncio.run(load(stack.url, 32, REQUESTS, perspective))
    finally:
        stack.stop()
    md = ["## API under load (127.0.0.1, 50-word posts, rules + embedded model)", "",
          "| endpoint, clients | requests | errors | p50 ms | p99 ms | requests/s |", "|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {k} | {v['requests']} | {v['errors']} | {v['p50_ms']} | {v['p99_ms']} | {v['requests_per_s']} |" for k, v in rows.items()]
    write("api_load", {"rows": rows}, "\n".join(md) + "\n")
    sys.stdout.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
