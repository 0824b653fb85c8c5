"""The low-severity edges of #12: 413 for chunked bodies and over-long batch text, all-or-nothing batches,
authentication before the body is parsed, a body read timeout, worker metrics on loopback, JSON crash logs."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, Keys, start_server, stop_server
from tests.crashing_classifier import CRASH_TEXT
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, free_port, start_worker, stop_workers, wait_for

JSON = {"content-type": "application/json"}


def test_a_chunked_body_over_the_limit_is_413_not_400(api: Api, keys: Keys) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"text": "'
        for _ in range(9):
            yield b"a" * (1 << 20)
        yield b'"}'

    with api.client(keys.moderate) as c:
        r = c.post("/v1/moderate", content=chunks(), headers=JSON)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


@pytest.mark.parametrize("route", ["/v1/moderate/batch", "/v1/submissions/batch"])
def test_an_over_long_text_in_any_batch_is_413(api_with_store: Api, keys: Keys, route: str) -> None:
    items = [{"text": "fine", "post_id": "a"}, {"text": "x" * 20_001, "post_id": "b"}]
    with api_with_store.client(keys.admin if route.startswith("/v1/moderate") else keys.submit_only) as c:
        r = c.post(route, json={"items": items})
    assert r.status_code == 413 and r.json()["code"] == "text_too_long"


def _submit(api: Api, keys: Keys, items: list[dict[str, str]]) -> tuple[int, Any]:
    with api.client(keys.submit_only) as c:
        r = c.post("/v1/submissions/batch", json={"items": items})
    return r.status_code, r.json()


def test_a_batch_with_a_conflict_stores_nothing(api_with_store: Api, keys: Keys) -> None:
    assert _submit(api_with_store, keys, [{"text": "first words", "post_id": "p-9"}])[0] == 202
    items = [{"text": f"post {i}", "post_id": f"p-{i}"} for i in range(3)] + [{"text": "other words", "post_id": "p-9"}]
    status, problem = _submit(api_with_store, keys, items)
    assert status == 409 and "items[3]" in str(problem["detail"]) and "nothing was stored" in str(problem["detail"])
    # Nothing of the refused batch was kept: the same first three are new now.
    status, body = _submit(api_with_store, keys, items[:3])
    assert status == 202 and [s["status"] for s in body["submissions"]] == ["queued"] * 3


def test_a_batch_that_contradicts_itself_stores_nothing(api_with_store: Api, keys: Keys) -> None:
    items = [{"text": "one", "post_id": "q-1"}, {"text": "same id, other text", "post_id": "q-1"}]
    status, problem = _submit(api_with_store, keys, items)
    assert status == 409 and "items[1]" in str(problem["detail"])
    status, body = _submit(api_with_store, keys, [{"text": "one", "post_id": "q-1"}, {"text": "one", "post_id": "q-1"}])
    ids = [s["submission_id"] for s in body["submissions"]]
    assert status == 202 and ids[0] == ids[1]  # a repeat within a batch is the same submission, stored once


def test_a_batch_with_an_unknown_community_stores_nothing(api_with_store: Api, keys: Keys) -> None:
    items = [{"text": "hello", "post_id": "c-1"}, {"text": "hello", "post_id": "c-2", "community": "nope"}]
    assert _submit(api_with_store, keys, items)[0] == 404
    status, body = _submit(api_with_store, keys, items[:1])
    assert status == 202 and body["submissions"][0]["status"] == "queued"


@pytest.mark.parametrize("token", [None, "msk_deadbeef_nope", "not-even-a-key"])
def test_a_stranger_gets_401_before_the_body_is_parsed(api: Api, token: str | None) -> None:
    with api.client(token) as c:
        broken = c.post("/v1/moderate", content=b'{"text": "unterminated', headers=JSON)
        huge_batch = c.post("/v1/submissions/batch", content=b"[" * 50_000, headers=JSON)
    for r in (broken, huge_batch):
        assert r.status_code == 401 and r.json()["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"


def test_a_key_holder_still_gets_400_for_malformed_json(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        assert c.post("/v1/moderate", content=b'{"text": "unterminated', headers=JSON).json()["code"] == "invalid_json"


def test_a_405_names_the_allowed_methods(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.get("/v1/moderate")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["code"] == "method_not_allowed"


def _read_response(sock: socket.socket) -> str:
    """Head and body of one HTTP response (they may arrive in separate TCP segments)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def _content_length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_client_that_stops_sending_its_body_gets_408(tmp_path: Path, keys: Keys) -> None:
    """A real uvicorn server and a raw socket that sends half a body and waits."""
    server = start_server(tmp_path, keys, {"MODERATION_BODY_READ_TIMEOUT_S": "1"})
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            head = f"POST /v1/moderate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys.moderate}\r\nContent-Type: application/json\r\n"
            sock.sendall((head + "Content-Length: 100\r\n\r\n").encode() + b'{"text": "')
            answer = _read_response(sock)
    finally:
        stop_server(server)
    assert answer.startswith("HTTP/1.1 408") and "request_timeout" in answer


def test_worker_metrics_listen_on_loopback_only(tmp_path: Path, redis_server: RedisServer, redis_url: str, shared_rules: Path) -> None:
    port = free_port()
    env = {
        "MODERATION_REDIS_URL": redis_url,
        "MODERATION_RULES_DIR": str(shared_rules),
        "MODERATION_CLASSIFIERS": FAKE,
        "MODERATION_WORKER_METRICS_PORT": str(port),
    }
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        listening = _listening_addresses(port)
    finally:
        stop_workers([worker])
    assert worker.returncode == 0
    assert listening == {"127.0.0.1"}, listening


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port``, read from the kernel's own tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]) if len(address) == 8 else address)
    return found


def test_a_worker_crash_is_one_json_log_line_without_the_message(tmp_path: Path, redis_url: str, shared_rules: Path) -> None:
    env = {
        "MODERATION_REDIS_URL": redis_url,
        "MODERATION_RULES_DIR": str(shared_rules),
        "MODERATION_CLASSIFIERS": "tests.crashing_classifier:exploding",
    }
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, wait=False)
    assert wait_for(lambda: worker.poll() is not None, 120)
    lines = log.read_text().splitlines()
    assert worker.returncode == 1 and lines
    entries = [json.loads(line) for line in lines]  # every line is JSON: no Rich traceback
    crash = entries[-1]
    assert crash["level"] == "critical" and crash["error"] == "RuntimeError"
    assert any("crashing_classifier.py" in frame for frame in crash["frames"])
    assert CRASH_TEXT not in log.read_text()
