"""Tenant isolation and key revocation through HTTP (issue 12, items 8 and 13).

Key B (another tenant, or the same tenant limited to other communities) must not see, acknowledge or
give feedback on A's data; a revoked key is refused by every running process within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from moderation_service.core.pipeline import Pipeline
from moderation_service.keys import generate_key
from tests.conftest import Api, Keys, make_api, settings_for, start_server, stop_server
from tests.queue_support import RedisServer, wait_for

DISTRESS = "I want to end my life"


@dataclass
class TenantKeys:
    a_all: str  # tenant a: moderate, submit, moderator
    b_all: str  # tenant b: the same scopes
    a_other_community: str  # tenant a, limited to a community it has no posts in
    lines: str


@pytest.fixture(scope="module")
def tenant_keys() -> TenantKeys:
    scopes = ["moderate", "submit", "moderator"]
    a, ka = generate_key(scopes, tenant="forum-a")
    b, kb = generate_key(scopes, tenant="forum-b")
    other, ko = generate_key(scopes, tenant="forum-a", communities=["arthritis"])
    return TenantKeys(a, b, other, "\n".join(k.line() for k in (ka, kb, ko)))


@pytest.fixture
def tenant_api(shared_pipeline: Pipeline, shared_rules: Path, tenant_keys: TenantKeys, redis_url: str) -> Api:
    holder = Keys("", "", "", "", tenant_keys.lines)
    return make_api(settings_for(shared_rules, holder, redis_url), shared_pipeline)


def _client(api: Api, token: str) -> TestClient:
    return api.client(token)


def test_key_b_cannot_see_ack_or_give_feedback_on_a_escalation(tenant_api: Api, tenant_keys: TenantKeys) -> None:
    with _client(tenant_api, tenant_keys.a_all) as a, _client(tenant_api, tenant_keys.b_all) as b:
        decision = a.post("/v1/moderate", json={"text": DISTRESS, "post_id": "a-1"}).json()
        decision_id = decision["decision_id"]
        assert decision["action"] == "escalate" and decision_id
        assert [e["id"] for e in a.get("/v1/escalations").json()["escalations"]] == [decision_id]
        assert b.get("/v1/escalations").json()["escalations"] == []
        feedback = {"outcome": "upheld", "final_action": "escalate"}
        assert b.post(f"/v1/escalations/{decision_id}/ack").status_code == 404
        assert b.post(f"/v1/decisions/{decision_id}/feedback", json=feedback).status_code == 404
        assert a.get("/v1/escalations").json()["escalations"][0]["id"] == decision_id  # B's ack changed nothing
        assert a.post(f"/v1/escalations/{decision_id}/ack").status_code == 200
        assert b.get("/v1/escalations", params={"status": "acked"}).json()["escalations"] == []
        assert a.post(f"/v1/decisions/{decision_id}/feedback", json=feedback).status_code == 201
    store = tenant_api.app.state.moderation.services.store
    assert [r.tenant for r in store.iter_feedback("forum-a")] == ["forum-a"] and list(store.iter_feedback("forum-b")) == []


def test_key_b_cannot_read_a_submission(tenant_api: Api, tenant_keys: TenantKeys) -> None:
    with _client(tenant_api, tenant_keys.a_all) as a, _client(tenant_api, tenant_keys.b_all) as b:
        sub_id = a.post("/v1/submissions", json={"text": "hello all", "post_id": "p-1"}).json()["submission_id"]
        assert a.get(f"/v1/submissions/{sub_id}").status_code == 200
        hidden = b.get(f"/v1/submissions/{sub_id}")
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
        # The same post_id from another tenant is its own submission (idempotency is per key).
        assert b.post("/v1/submissions", json={"text": "other text", "post_id": "p-1"}).status_code == 202


def test_a_key_limited_to_other_communities_sees_and_posts_nothing_here(tenant_api: Api, tenant_keys: TenantKeys) -> None:
    with _client(tenant_api, tenant_keys.a_all) as a, _client(tenant_api, tenant_keys.a_other_community) as other:
        decision_id = a.post("/v1/moderate", json={"text": DISTRESS}).json()["decision_id"]
        assert other.get("/v1/escalations").json()["escalations"] == []
        assert other.post(f"/v1/escalations/{decision_id}/ack").status_code == 404
        refused = other.post("/v1/moderate", json={"text": "hello"})
        assert refused.status_code == 403 and "peer-support" in refused.json()["detail"]
        assert other.post("/v1/submissions", json={"text": "hello", "post_id": "x"}).status_code == 403


def _revoke(keys_file: Path, key_id: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODERATION_REDIS_URL": redis_url}
    command = [sys.executable, "-m", "moderation_service", "keys", "revoke", key_id, "--keys-file", str(keys_file)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_revoke_reaches_every_process_within_seconds(tmp_path: Path, redis_server: RedisServer, redis_url: str) -> None:
    """Two real API processes with their own copies of the keys file (two machines) and one Redis."""
    token, key = generate_key(["moderate"])
    other_token, other = generate_key(["moderate"])
    holder = Keys("", "", "", "", f"{key.line()}\n{other.line()}")
    servers = [start_server(tmp_path / name, holder, {"MODERATION_REDIS_URL": redis_url}) for name in ("one", "two")]
    try:
        clients = [s.client(token) for s in servers]
        assert all(c.post("/v1/moderate", json={"text": "hi"}).status_code == 200 for c in clients)
        result = _revoke(tmp_path / "one" / "keys", key.id, redis_url)
        assert result.returncode == 0 and "published in Redis" in result.stdout, result.stderr
        assert (
            f"{key.id} moderate sha256$" in (tmp_path / "one" / "keys").read_text()
            and "revoked=" in (tmp_path / "one" / "keys").read_text()
        )
        for client in clients:

            def refused(c: httpx.Client = client) -> bool:
                return c.post("/v1/moderate", json={"text": "hi"}).status_code == 401

            assert wait_for(refused, 10)
            assert "revoked" in client.post("/v1/moderate", json={"text": "hi"}).json()["detail"]
        for s in servers:
            with s.client(other_token) as c:
                assert c.post("/v1/moderate", json={"text": "hi"}).status_code == 200  # other keys unaffected
        for client in clients:
            client.close()
    finally:
        for s in servers:
            stop_server(s)


def test_keys_list_and_an_edited_keys_file_take_effect_without_restart(tmp_path: Path, redis_url: str) -> None:
    """A key appended to the file works within seconds; `keys list` shows tenant, communities, expiry and status."""
    from typer.testing import CliRunner

    from moderation_service.cli import app

    token, key = generate_key(["moderate"])
    holder = Keys("", "", "", "", key.line())
    server = start_server(tmp_path, holder, {"MODERATION_REDIS_URL": redis_url})
    keys_file = tmp_path / "keys"
    try:
        runner = CliRunner()
        created = runner.invoke(
            app,
            ["keys", "create", "--scope", "moderate", "--tenant", "forum-b", "--community", "peer-support", "--expires", "2099-12-31"]
            + ["--keys-file", str(keys_file)],
        )
        assert created.exit_code == 0, created.output
        new_token = next(word for word in created.output.split() if word.startswith("msk_"))
        with server.client(new_token) as c:
            assert wait_for(lambda: c.post("/v1/moderate", json={"text": "hi"}).status_code == 200, 10)
        listing = runner.invoke(app, ["keys", "list", "--keys-file", str(keys_file)], env={"MODERATION_REDIS_URL": redis_url})
        assert listing.exit_code == 0, listing.output
        row = next(line for line in listing.output.splitlines() if "forum-b" in line)
        assert "peer-support" in row and "2099-12-31" in row and "active" in row
        assert token.split("_", 2)[2] not in listing.output and new_token.split("_", 2)[2] not in listing.output
        assert runner.invoke(app, ["keys", "revoke", "nope", "--keys-file", str(keys_file)]).exit_code == 2
    finally:
        stop_server(server)
