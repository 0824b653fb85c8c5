"""Start and stop a local stack (Redis, API, workers) on 127.0.0.1 for the load benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from moderation_service.keys import generate_key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    env: dict[str, str]
    url: str
    token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_workers(self, count: int, extra: dict[str, str] | None = None) -> None:
        for _ in range(count):
            command = [sys.executable, "-m", "moderation_service", "worker"]
            env = {**os.environ, **self.env, **(extra or {})}
            self.workers.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.workers.clear()

    def stop(self) -> None:
        self.stop_workers()
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=30)


def start(classifiers: str, redis: bool, extra_env: dict[str, str] | None = None, *, cli: bool = False) -> Stack:
    """``cli``: the API as ``moderation-service serve`` runs it (one process), else uvicorn on the app factory."""
    token, key = generate_key(["moderate", "submit", "moderator", "admin"])
    env = {
        "MODERATION_API_KEYS": key.line(),
        "MODERATION_CLASSIFIERS": classifiers,
        "MODERATION_CLASSIFIER_TIMEOUT_S": "10",
        **(extra_env or {}),
    }
    processes = []
    if redis:
        port = free_port()
        folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        args = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        processes.append(
            subprocess.Popen([*args, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], stdout=subprocess.DEVNULL)
        )
        env["MODERATION_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    api_port = free_port()
    command = [sys.executable, "-m", "uvicorn", "moderation_service.api.app:app_from_env", "--factory", "--host", "127.0.0.1"]
    if cli:
        command = [sys.executable, "-m", "moderation_service", "serve", "--host", "127.0.0.1"]
    api = subprocess.Popen(
        [*command, "--port", str(api_port)], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    processes.append(api)
    url = f"http://127.0.0.1:{api_port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Stack(env, url, token, processes)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("API did not start")
