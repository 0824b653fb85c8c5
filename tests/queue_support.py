"""Real redis-server and worker processes, and stopping processes cleanly (SIGTERM, then assert they exited)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

# Every write reaches the append-only file; tests stop Redis with SIGTERM (it flushes), so fsync per second
# keeps every test's guarantees while not paying a disk sync per write on a shared CI disk.
FSYNC = "everysec"

__all__ = ["RedisServer", "free_port", "start_worker", "stop_process", "stop_workers", "wait_for"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20, signum: int = signal.SIGTERM) -> int:
    """SIGTERM (or ``signum``), and the process must exit by itself; one that hangs is killed and the test fails
    (never silently). Returns its exit code, for tests that assert a clean stop (0)."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signum)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"process {process.args!r} did not exit within {timeout} s of SIGTERM") from None


@dataclass
class RedisServer:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server must be installed (scripts/system-deps installs it)"
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--appendonly", "yes"]
        args += ["--appendfsync", FSYNC, "--save", "", "--loglevel", "warning"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.3)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            assert wait_for(up, 20), "redis-server did not start"
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)  # SIGTERM: Redis flushes the AOF and exits
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def _ready_count(log: Path) -> int:
    return log.read_text(errors="replace").count('"msg": "worker ready"') if log.exists() else 0


def start_worker(env: dict[str, str], log: Path, wait: bool = True) -> subprocess.Popen[bytes]:
    """A worker process, returned once it has loaded everything and takes jobs (it logs "worker ready"); or at once."""
    ready_before = _ready_count(log)
    with log.open("ab") as handle:
        worker = subprocess.Popen(
            [sys.executable, "-m", "moderation_service", "worker"],
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,  # so the worker imports the test-only classifier
        )
    if not wait:
        return worker
    if not wait_for(lambda: _ready_count(log) > ready_before or worker.poll() is not None, 90):
        worker.kill()  # a failed start must not leave a worker behind the test
        worker.wait()
        raise AssertionError("worker did not start within 90 s")
    assert worker.poll() is None, log.read_text(errors="replace")[-2000:]
    return worker


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all first (they stop in parallel), then each must exit on its own."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        stop_process(worker)
