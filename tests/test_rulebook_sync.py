"""One rulebook version in every process: real API processes and a real worker on one Redis and one rules folder.

A reload (HTTP or SIGHUP) on one process is published in Redis and followed by the others; a queued post
accepted after a reload is judged by the reloaded rules; a community added after the workers started works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Keys, Server, copy_rules, start_server
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, start_worker, stop_process, wait_for

EXAMPLE = ROOT / "rules" / "examples" / "diabetes-forum.yaml"
CLAIM = "This detox diet got me off insulin for good!"
# A bare ``uvicorn`` re-raises SIGTERM after its graceful shutdown (``moderation-service serve`` exits 0).
UVICORN_STOPPED = (0, -signal.SIGTERM)
NEW_CLAIM = "This detox diet let me ditch insulin"  # held only once "ditch insulin" is in the rule


def test_a_rulebook_has_the_same_version_in_every_process(tmp_path: Path) -> None:
    """The version names the rules: two interpreters (different hash seeds) must agree on it."""
    rules = copy_rules(tmp_path)
    code = (
        "import sys; from pathlib import Path; from moderation_service.core.rulebook.loader import load_rulebook; "
        f"print(load_rulebook(Path({str(rules / 'peer-support.yaml')!r}), frozenset(), Path({str(rules)!r})).version)"
    )
    versions = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(versions) == 1


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return copy_rules(tmp_path / "shared")


def api_process(tmp: Path, keys: Keys, redis: RedisServer, rules: Path) -> Server:
    return start_server(tmp, keys, {"MODERATION_REDIS_URL": redis.url, "MODERATION_RULES_DIR": str(rules)})


def readyz(server: Server) -> dict[str, object]:
    return dict(httpx.get(f"{server.url}/readyz", timeout=10).json())


def queued_decision(c: httpx.Client, text: str, post_id: str, community: str) -> dict[str, object]:
    r = c.post("/v1/submissions", json={"text": text, "post_id": post_id, "community": community})
    assert r.status_code == 202, r.text
    url = f"/v1/submissions/{r.json()['submission_id']}"
    assert wait_for(lambda: c.get(url).json()["status"] in ("done", "failed"), 60)
    result = c.get(url).json()
    assert result["status"] == "done", result
    return dict(result["decision"])


def test_reload_reaches_the_worker_and_a_community_added_later_works_on_the_queue(
    tmp_path: Path, keys: Keys, redis: RedisServer, rules: Path
) -> None:
    api = api_process(tmp_path / "api", keys, redis, rules)
    env = {"MODERATION_REDIS_URL": redis.url, "MODERATION_RULES_DIR": str(rules), "MODERATION_CLASSIFIERS": FAKE}
    worker = start_worker(env, tmp_path / "worker.log")  # started before the community exists
    try:
        (rules / "diabetes-forum.yaml").write_text(EXAMPLE.read_text())
        with api.client(keys.admin) as admin, api.client(keys.submit_only) as submit:
            reloaded = admin.post("/v1/rulebooks/reload").json()
            assert reloaded["published"] is True and "diabetes-forum" in reloaded["reloaded"]
            first = queued_decision(submit, CLAIM, "new-community-1", "diabetes-forum")
            assert first["action"] == "hold" and first["rulebook"] == {
                "name": "diabetes-forum",
                "version": reloaded["reloaded"]["diabetes-forum"],
            }

            # A changed rule: the queued post is judged by the new version, as the sync answer is.
            path = rules / "diabetes-forum.yaml"
            path.write_text(path.read_text().replace("no more insulin]", "no more insulin, ditch insulin]"))
            again = admin.post("/v1/rulebooks/reload").json()
            version = again["reloaded"]["diabetes-forum"]
            assert version != first["rulebook"]["version"]
            queued = queued_decision(submit, NEW_CLAIM, "changed-rule-1", "diabetes-forum")
            sync = admin.post("/v1/moderate", json={"text": NEW_CLAIM, "community": "diabetes-forum"}).json()
        assert queued["action"] == sync["action"] == "hold"
        assert queued["rulebook"] == sync["rulebook"] == {"name": "diabetes-forum", "version": version}
        assert readyz(api)["rulebook_version"] == again["rulebook_version"]
    finally:
        assert stop_process(worker) == 0
        assert stop_process(api.process) in UVICORN_STOPPED


def test_sighup_on_one_api_process_reaches_the_other_within_seconds(tmp_path: Path, keys: Keys, redis: RedisServer, rules: Path) -> None:
    first = api_process(tmp_path / "a", keys, redis, rules)
    second = api_process(tmp_path / "b", keys, redis, rules)
    try:
        assert readyz(first)["rulebook_version"] == readyz(second)["rulebook_version"]
        (rules / "diabetes-forum.yaml").write_text(EXAMPLE.read_text())
        first.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "diabetes-forum" in readyz(first)["rulebooks"], 30)  # type: ignore[operator]
        wanted = readyz(first)["rulebook_version"]
        assert wait_for(lambda: readyz(second)["rulebook_version"] == wanted, 15)  # followed, not reloaded by hand
        status = readyz(second)
        assert status["rulebooks_current"] is True
        with second.client(keys.moderate) as c:
            answers = [c.post("/v1/moderate", json={"text": CLAIM, "community": "diabetes-forum"}).json() for _ in range(10)]
        assert {a["action"] for a in answers} == {"hold"}
        assert {a["rulebook"]["version"] for a in answers} == {status["rulebooks"]["diabetes-forum"]}  # type: ignore[index]
    finally:
        assert stop_process(first.process) in UVICORN_STOPPED
        assert stop_process(second.process) in UVICORN_STOPPED
