"""Shared benchmark helpers: timing stats and result files stamped with commit, CPU and versions."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


# Libraries whose speed the figures depend on: the model runtime, the text stages, the HTTP stack.
_VERSIONED = ("onnxruntime", "torch", "google-re2", "regex", "lingua-language-detector", "spacy", "fastapi", "uvicorn", "uvloop", "httptools")  # fmt: skip


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = "unknown"
    versions: dict[str, str | None] = {}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    import os

    return {
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def timed(fn: Callable[[], object], iterations: int, warmup: int = 10) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds over ``iterations`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()

    def pct(p: float) -> float:
        return round(samples[min(len(samples) - 1, int(p * len(samples)))], 3)

    return {"n": iterations, "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "mean_ms": round(statistics.fmean(samples), 3)}


def write(name: str, payload: dict[str, Any], markdown: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    return path


def words(n: int) -> str:
    base = (
        "I have lived with rheumatoid arthritis for eleven years and the mornings are still the hardest part "
        "my hands are stiff and swollen until the tablets kick in and I worry about the new biologic my "
        "consultant suggested because of the infection risk has anyone here started it and how did the "
        "first weeks go for you I would really value hearing from people who understand"
    ).split()
    return " ".join(base[i % len(base)] for i in range(n))
