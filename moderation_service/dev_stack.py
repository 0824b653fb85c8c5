"""What ``moderation-service run`` does around its processes so a first start reads well.

A busy port is refused before anything starts; the ONNX file is built once, quietly, before the API
and the worker would each build it; the development key survives restarts (kept in the data folder);
and the key and a ready ``curl`` line are printed last, once the API answers and every process has
compiled its crisis grammars, so no start-up log scrolls them away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from moderation_service.config import ModelSettings
from moderation_service.errors import AuthError, ConfigError
from moderation_service.keys import SCOPES, ApiKey, KeyStore, generate_key

__all__ = [
    "GRAMMARS_READY",
    "WORKER_READY",
    "DevKey",
    "StartupWatch",
    "append_key_line",
    "build_models_quietly",
    "development_key",
    "port_problem",
    "rewrite_private",
]

# What each process logs when its crisis grammars are compiled (the crisis detector), and what a worker
# logs once it takes jobs: a worker has started when it has said both, in either order.
GRAMMARS_READY = "crisis grammars ready"
WORKER_READY = "worker ready"


def port_problem(host: str, port: int, how_to_change: str) -> str | None:
    """One line saying why ``host:port`` cannot be served, or None when it is free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and Redis bind: TIME_WAIT is not "busy"
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"port {port} on {host} is already in use ({exc.strerror}): stop what holds it, or {how_to_change}"
    return None


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null: exporters and quantisers print from C++ as well as Python."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def build_models_quietly(models: ModelSettings, say: Callable[[str], None]) -> None:
    """Build the embedded model's ONNX file here, once, before the API and workers start and look for it."""
    from moderation_service.bootstrap import ensure_models, models_to_build

    missing = models_to_build(models)
    if not missing:
        return
    say(f"first start: building the embedded model's int8 ONNX file into {models.cache_dir} (about 30 s)...")
    started = time.monotonic()
    with _silenced():
        built = ensure_models(models)
    name = missing[0].name
    say(f"built {name} in {time.monotonic() - started:.0f} s" if built else f"found {name} (built by another process)")


@dataclass(frozen=True)
class DevKey:
    """The development key of a data folder, and the keys file the API reads it from."""

    token: str
    keys_file: Path
    token_file: Path
    reused: bool


def append_key_line(path: Path, key: ApiKey) -> None:
    """Add a hashed key line to a keys file, created readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(key.line() + "\n")


def rewrite_private(path: Path, text: str) -> None:
    """Replace a keys file in one step (readers see the old or the new file, never half), owner-only."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, path)


def development_key(data_dir: Path) -> DevKey:
    """The key kept in ``data_dir`` (all scopes), made on first use, so clients keep working across restarts."""
    keys_file, token_file = data_dir / "api-keys", data_dir / "dev-api-key"
    if token_file.is_file() and keys_file.is_file():
        token = token_file.read_text(encoding="utf-8").strip()
        try:
            KeyStore.from_lines(keys_file.read_text(encoding="utf-8"), str(keys_file)).authenticate(token, "admin")
            return DevKey(token, keys_file, token_file, reused=True)
        except (AuthError, ConfigError):
            pass  # edited or stale: make a new one below
    token, key = generate_key(list(SCOPES))
    append_key_line(keys_file, key)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return DevKey(token, keys_file, token_file, reused=False)


class StartupWatch:
    """Counts the processes that have finished warming up, and prints the closing lines once all have."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self._warm = 0
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    def saw_warm(self) -> None:
        with self._changed:
            self._warm += 1
            self._changed.notify_all()

    def wait_warm(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._warm >= self.expected, timeout=max(0.0, timeout))

    def log_handler(self) -> logging.Handler:
        """For this process's own loggers: counts this process's warm-up."""
        watch = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage() == GRAMMARS_READY:
                    watch.saw_warm()

        return _Handler()

    def forward(self, stream: IO[bytes], sink: IO[bytes]) -> None:
        """Copy a worker's stderr to ours line by line (a thread), counting it once it has said both ready lines."""

        def pump() -> None:
            waiting = {GRAMMARS_READY.encode(), WORKER_READY.encode()}
            for line in iter(stream.readline, b""):
                sink.write(line)
                sink.flush()
                if waiting:
                    waiting = {marker for marker in waiting if marker not in line}
                    if not waiting:
                        self.saw_warm()
            stream.close()

        thread = threading.Thread(target=pump, name="child-stderr", daemon=True)
        thread.start()
        self._threads.append(thread)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait for the children's last lines (after they exit) to be copied."""
        for thread in self._threads:
            thread.join(timeout)

    def announce(self, ready_url: str, lines: list[str], say: Callable[[str], None], timeout_s: float = 300) -> None:
        """Print ``lines`` (a thread) once ``ready_url`` answers 200 and every process is warm, or after ``timeout_s``."""

        def wait_then_say() -> None:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:  # urllib, not httpx: httpx logs each request, and this must add no line of its own
                    with urllib.request.urlopen(ready_url, timeout=1) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.2)
            self.wait_warm(deadline - time.monotonic())
            time.sleep(0.2)  # let the last start-up line of each process reach the terminal first
            for line in lines:
                say(line)

        threading.Thread(target=wait_then_say, name="ready-announcer", daemon=True).start()
