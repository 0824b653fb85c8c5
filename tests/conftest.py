"""Shared fixtures: the app in-process over one shared pipeline, a real Redis flushed per test, API keys,
and (for the few end-to-end tests) a real uvicorn server process.

Most HTTP tests run the FastAPI app in-process (``TestClient``): a fresh app and metrics registry per
test, over one pipeline built once per session (rules copied to a temporary folder, the test-only
``fake`` classifier). Processes started here are stopped with SIGTERM and must exit by themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from moderation_service.api.app import create_app
from moderation_service.bootstrap import build_pipeline, build_services
from moderation_service.config import ApiSettings, ModelSettings, PipelineSettings, RedisSettings, RulesSettings, Settings
from moderation_service.core.crisis import CrisisDetector
from moderation_service.core.pipeline import Pipeline
from moderation_service.keys import generate_key
from tests.fake_classifier import FAKE, register_fake
from tests.grammars import language_detector, shipped_grammars
from tests.queue_support import RedisServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"

register_fake()  # in-process tests name the test-only classifier "fake"; it is not in the production registry


CORAL_TENANT = "19ba5794-7eeb-4d46-a81b-c00c61672501"
CORAL_OLD_SECRET, CORAL_NEW_SECRET = "ssc_old_0123456789abcdef", "ssc_new_fedcba9876543210"
CORAL_ENV = {"MODERATION_CORAL_SECRETS": json.dumps({CORAL_TENANT: [CORAL_NEW_SECRET, CORAL_OLD_SECRET]})}


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


def copy_rules(tmp: Path) -> Path:
    rules_dir = tmp / "rules"
    shutil.copytree(RULES, rules_dir, ignore=shutil.ignore_patterns("examples"))
    return rules_dir


def settings_for(rules_dir: Path, keys: Keys, redis_url: str | None = None, **groups: object) -> Settings:
    """Settings for an in-process app: the given rules, keys and Redis, the fake classifier, a 1 s model budget."""
    defaults: dict[str, object] = {
        "rules": RulesSettings(rules_dir=rules_dir),
        "api": ApiSettings(api_keys=keys.lines),
        "models": ModelSettings(classifiers=["fake"]),
        "pipeline": PipelineSettings(classifier_timeout_s=1.0),
        "redis": RedisSettings(url=redis_url),
    }
    return Settings(**{**defaults, **groups})  # type: ignore[arg-type]


# --- Redis ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A real Redis, emptied before each test that asks for it."""
    if redis_server.process is None:  # a test stopped it (outage test) and failed before restarting it
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


# --- the app in-process --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_rules(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="session")
def shared_pipeline(shared_rules: Path, keys: Keys) -> Iterator[Pipeline]:
    """Rulebooks, crisis grammars and the fake classifier, loaded once for every in-process app."""
    crisis = CrisisDetector(shipped_grammars(), language_detector())
    pipeline = build_pipeline(settings_for(shared_rules, keys), crisis=crisis)
    yield pipeline
    pipeline.close()


@dataclass
class Api:
    app: FastAPI
    rules_dir: Path
    settings: Settings

    def client(self, token: str | None) -> TestClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return TestClient(self.app, headers=headers, raise_server_exceptions=False)


def make_api(settings: Settings, pipeline: Pipeline) -> Api:
    services = build_services(settings, pipeline=pipeline)
    return Api(create_app(settings, CollectorRegistry(), services), settings.rules.rules_dir, settings)


@pytest.fixture
def api(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys) -> Api:
    """The app without Redis (sync routes), fresh per test."""
    return make_api(settings_for(shared_rules, keys), shared_pipeline)


@pytest.fixture
def api_with_store(shared_pipeline: Pipeline, shared_rules: Path, keys: Keys, redis_url: str) -> Api:
    """The app with a real, freshly emptied Redis behind the store and queues."""
    return make_api(settings_for(shared_rules, keys, redis_url), shared_pipeline)


# --- a real server process, for the end-to-end tests ---------------------------------------------


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


def start_server(tmp: Path, keys: Keys, extra_env: dict[str, str] | None = None, *, cli: bool = False) -> Server:
    """uvicorn on the app factory, or (``cli``) ``moderation-service serve``, whose SIGTERM/SIGINT stop exits 0."""
    rules_dir = copy_rules(tmp)
    keys_file = tmp / "keys"
    keys_file.write_text(keys.lines + "\n")
    port = free_port()
    env = {
        **os.environ,
        "MODERATION_RULES_DIR": str(rules_dir),
        "MODERATION_API_KEYS_FILE": str(keys_file),
        "MODERATION_CLASSIFIERS": FAKE,
        "MODERATION_CLASSIFIER_TIMEOUT_S": "1.0",
        **(extra_env or {}),
    }
    log_path = tmp / "server.log"
    command = [sys.executable, "-m", "uvicorn", "moderation_service.api.app:app_from_env", "--factory", "--host", "127.0.0.1"]
    if cli:
        command = [sys.executable, "-m", "moderation_service", "serve", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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
    stop_process(process)
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")


def stop_server(server: Server) -> None:
    stop_process(server.process)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, keys: Keys, redis_server: RedisServer) -> Iterator[Server]:
    """One real uvicorn process for the end-to-end tests (logs, SIGHUP, third-party HTTP clients)."""
    running = start_server(tmp_path_factory.mktemp("server"), keys, {"MODERATION_REDIS_URL": redis_server.url, **CORAL_ENV})
    yield running
    stop_server(running)
