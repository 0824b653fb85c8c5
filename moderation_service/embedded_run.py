"""``moderation-service run``: Redis (a real server, child process, AOF on), workers, and the API, supervised.

For a single machine with no configuration. A child that dies (a worker killed, Redis crashed) is
started again by the supervisor thread, with a growing pause if it keeps dying. Ctrl-C or SIGTERM
stops all cleanly: the API first, then the workers (each finishes or releases its job), then Redis
(which flushes its append-only file), and ``run`` exits 0. In production run the same code as
separate ``serve`` and ``worker`` processes under your own supervisor, against ``MODERATION_REDIS_URL``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from moderation_service.errors import ConfigError

__all__ = ["Supervisor", "start_redis", "start_worker", "stop"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0  # a worker's stop timeout (10 s by default) plus room: then it is killed, and that is logged
_CHECK_EVERY_S = 0.5
_MAX_PAUSE_S = 30.0


def start_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """A redis-server bound to loopback, persisting every write to its AOF before acknowledging it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError("redis-server not found: install it (Debian: apt-get install redis-server) or set MODERATION_REDIS_URL")
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the AOF holds post text until it is rewritten: readable by this user only
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--appendonly", "yes"]
    args += ["--appendfsync", "always", "--save", "", "--protected-mode", "yes", "--loglevel", "warning"]
    # Its own session: a Ctrl-C in the terminal reaches only `run`, which stops Redis last, after the workers.
    # umask 077: every file Redis writes (the AOF's base, increment and manifest files) is created 0600.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ConfigError(f"redis-server exited with code {process.returncode} (is port {port} in use?)")
            try:
                if client.ping():
                    return process
            except redis.ConnectionError:
                time.sleep(0.1)
    finally:
        client.close()
    process.kill()
    process.wait()
    raise ConfigError("redis-server did not start within 20 s")


def start_worker(redis_url: str | None, stderr: int | None = None) -> subprocess.Popen[bytes]:
    """A worker process for this Redis, told so on its command line (not through the environment).

    In its own session, so a terminal's Ctrl-C reaches only `run`, which stops the workers in order.
    """
    args = [sys.executable, "-m", "moderation_service", "worker", *(["--redis-url", redis_url] if redis_url else [])]
    return subprocess.Popen(args, stderr=stderr, start_new_session=True)


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to all, then wait for each; one still running after ``timeout`` is killed (and that is logged)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("child did not stop within its time after SIGTERM; killed")
            process.kill()
            process.wait()


@dataclass
class _Child:
    """One supervised process: how to start it, the running one, and the pause before the next restart."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    pause_s: float = 0.5
    restarts: int = 0
    next_start: float = field(default=0.0)


class Supervisor:
    """Starts Redis and the workers, and keeps them running until ``stop``: the part of ``run`` that is not the API."""

    def __init__(
        self,
        data_dir: Path,
        redis_port: int,
        redis_url: str | None,
        workers: int,
        on_worker_start: Callable[[subprocess.Popen[bytes]], None] = lambda process: None,
    ) -> None:
        self._redis = _Child("redis", lambda: start_redis(data_dir, redis_port))
        self._workers = [_Child(f"worker {i + 1}", self._worker_launcher(redis_url, on_worker_start)) for i in range(workers)]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    @staticmethod
    def _worker_launcher(
        redis_url: str | None, started: Callable[[subprocess.Popen[bytes]], None]
    ) -> Callable[[], subprocess.Popen[bytes]]:
        def launch() -> subprocess.Popen[bytes]:
            process = start_worker(redis_url, stderr=subprocess.PIPE)
            started(process)
            return process

        return launch

    @property
    def pids(self) -> dict[str, int]:
        """The running children by name (for the log and for tests)."""
        return {c.name: c.process.pid for c in (self._redis, *self._workers) if c.process is not None and c.process.poll() is None}

    def start(self) -> None:
        """Redis first (the workers would only wait for it), then the workers, then the watch."""
        self._redis.process = self._redis.launch()
        for child in self._workers:
            child.process = child.launch()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(_CHECK_EVERY_S):
            for child in (self._redis, *self._workers):
                try:
                    self._check(child)
                except (ConfigError, OSError) as exc:  # e.g. Redis's port taken meanwhile: try again later
                    log.error(f"{child.name} could not be started again: {exc}")
                    child.next_start = time.monotonic() + child.pause_s
                    child.pause_s = min(_MAX_PAUSE_S, child.pause_s * 2)

    def _check(self, child: _Child) -> None:
        process = child.process
        now = time.monotonic()
        if process is not None and process.poll() is None:
            if now > child.next_start + 60:
                child.pause_s = 0.5  # up for a minute: the next crash restarts quickly again
            return
        if process is not None:
            log.warning(f"{child.name} exited with code {process.returncode}; starting it again in {child.pause_s:.1f} s")
            child.process = None
            child.next_start = now + child.pause_s
            child.pause_s = min(_MAX_PAUSE_S, child.pause_s * 2)
            return
        if now >= child.next_start and not self._stopping.is_set():
            child.process = child.launch()
            child.restarts += 1
            child.next_start = now
            log.info(f"{child.name} started again")

    def stop(self) -> None:
        """No more restarts; the workers stop (finishing or releasing their jobs), then Redis."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        stop([c.process for c in self._workers if c.process is not None])
        if self._redis.process is not None:
            stop([self._redis.process])
