"""Shared fixtures: a real uvicorn server over HTTP, API keys, and a private copy of the rules."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from moderation_service.keys import generate_key

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Keys:
    moderate: str
    admin: str
    submit_only: str
    moderator: str
    lines: str


@pytest.fixture(scope="session")
def keys() -> Keys:
    moderate, k1 = generate_key(["moderate"])
    admin, k2 = generate_key(["moderate", "admin"])
    submit_only, k3 = generate_key(["submit"])
    moderator, k4 = generate_key(["moderator"])
    return Keys(moderate, admin, submit_only, moderator, "\n".join(k.line() for k in (k1, k2, k3, k4)))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    rules_dir: Path

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(tmp: Path, keys: Keys, extra_env: dict[str, str] | None = None) -> Server:
    rules_dir = tmp / "rules"
    shutil.copytree(RULES, rules_dir, ignore=shutil.ignore_patterns("examples"))
    keys_file = tmp / "keys"
    keys_file.write_text(keys.lines + "\n")
    port = free_port()
    env = {
        **os.environ,
        "MODERATION_RULES_DIR": str(rules_dir),
        "MODERATION_API_KEYS_FILE": str(keys_file),
        "MODERATION_CLASSIFIERS": "fake",
        "MODERATION_CLASSIFIER_TIMEOUT_S": "1.0",
        **(extra_env or {}),
    }
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "moderation_service.api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, process, log_path, rules_dir)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server"), keys)
    yield running
    stop_server(running)
