"""``moderation-service run``: Redis (a real server, child process, AOF on), a worker, and the API.

For a single machine with no configuration. Ctrl-C stops all three cleanly: the API first, then
the worker (finishing its job), then Redis (which flushes its append-only file). In production run
the same code as separate ``serve`` and ``worker`` processes against ``MODERATION_REDIS_URL``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

from moderation_service.errors import ConfigError

__all__ = ["start_redis", "start_workers", "stop"]


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
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"redis-server exited with code {process.returncode} (is port {port} in use?)")
        try:
            if client.ping():
                return process
        except redis.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise ConfigError("redis-server did not start within 20 s")


def start_workers(count: int, redis_url: str | None, stderr: int | None = None) -> list[subprocess.Popen[bytes]]:
    """Worker processes for this Redis, told so on their command line (not through the environment).

    Each in its own session, so a terminal's Ctrl-C reaches only `run`, which stops them in order.
    """
    args = [sys.executable, "-m", "moderation_service", "worker", *(["--redis-url", redis_url] if redis_url else [])]
    return [subprocess.Popen(args, stderr=stderr, start_new_session=True) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
