"""Every command and HTTP example in the README, run against a live ``moderation-service run`` (what ``make run`` starts).

The stack is the real thing: the console script in its own process group (as a terminal runs it),
its Redis and worker, the embedded model. Documented outputs (the ``# {...}`` lines under each
example) are checked against the real answers; the start-up must end with the development key and
a ``curl`` line; Ctrl-C (SIGINT to the process group) and SIGTERM must both stop everything cleanly.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.queue_support import free_port

pytestmark = [pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI = str(Path(sys.executable).parent / "moderation-service")
CALLBACK_HOSTS = "forum.example.org"  # what the README's callback example starts the service with ...
SECRET_FROM = "MODERATION_WEBHOOK_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"  # ... and its secret


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    redis_port: int
    data_dir: Path
    startup: list[str]  # everything printed up to and a moment after the curl line

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return next(line.strip() for line in self.startup if line.strip().startswith("msk_"))

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "PROMETHEUS_"))}
    secret = secrets.token_hex(32)
    return {**env, "MODERATION_CALLBACK_ALLOWED_HOSTS": CALLBACK_HOSTS, "MODERATION_WEBHOOK_SECRET": secret, **extra}


def start_stack(tmp: Path, data_dir: Path, port: int, redis_port: int, name: str) -> Stack:
    log = tmp / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [CLI, "run", "--port", str(port), "--redis-port", str(redis_port), "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a shell job: Ctrl-C goes to the group
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "  try: curl" in text:
            time.sleep(3)  # anything start-up still had to say would arrive now
            return Stack(process, log, port, redis_port, data_dir, log.read_text(errors="replace").splitlines())
        if process.poll() is not None:
            raise AssertionError(f"run exited with {process.returncode}:\n{text}")
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"no key printed within 300 s:\n{log.read_text(errors='replace')}")


def stop_stack(stack: Stack, sig: signal.Signals) -> None:
    """Signal the group as a terminal would; everything must stop by itself, exit 0, nothing left listening."""
    os.killpg(stack.process.pid, sig)
    try:
        code = stack.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        raise AssertionError(f"run did not stop within 60 s after {sig.name}:\n{stack.text()}") from None
    text = stack.text()
    assert code == 0, text
    assert text.rstrip().endswith("stopped API, worker(s) and Redis"), text[-3000:]
    assert "Traceback" not in text and "without a stop request" not in text, text[-3000:]
    for port in (stack.port, stack.redis_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after stop"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("readme")
    running = start_stack(tmp, tmp / "data", free_port(), free_port(), "first")
    yield running
    if running.process.poll() is None:
        stop_stack(running, signal.SIGINT)


@pytest.fixture(scope="module")
def workdir(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout-like folder for the README's commands (outputs land here, `.data` is the stack's)."""
    work = tmp_path_factory.mktemp("work")
    for name in ("rules", "models", "tests"):
        (work / name).symlink_to(ROOT / name)
    (work / ".data").symlink_to(stack.data_dir)
    return work


def cli(workdir: Path, command: str, stack: Stack, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A README command line, through bash (for globs), with the live stack's Redis as `make run` sets it."""
    env = _env(MODERATION_REDIS_URL=f"redis://127.0.0.1:{stack.redis_port}/0", PATH=f"{Path(CLI).parent}:{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


# --- the README's examples, parsed ----------------------------------------------------------------


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def curl_examples() -> list[tuple[str, str]]:
    """(command, documented output) for every curl in the README."""
    examples = []
    for block in sh_blocks():
        lines = block.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("curl "):
                doc = []
                for after in lines[i + 1 :]:
                    if not after.startswith("# "):
                        break
                    doc.append(after[2:])
                examples.append((line, " ".join(doc)))
    return examples


def readme_commands() -> list[str]:
    """Every `moderation-service ...` line of the README's shell blocks, without its comment."""
    commands = []
    for block in sh_blocks():
        for line in block.splitlines():
            if line.startswith("moderation-service "):
                commands.append(line.split("  #", 1)[0].strip())
    return commands


_PAIR = re.compile(r'"([\w.]+)":\s*("(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?|\[[^\[\]{}]*\])')
_GROUP = '"<group>"'


def _value_matches(documented: Any, actual: Any) -> bool:
    if isinstance(documented, str) and documented == "<group>":
        return True  # a nested object or list shown in part: checked on its own
    if isinstance(documented, str):
        pattern = re.escape(documented.removesuffix("...").rstrip()).replace(re.escape("<id>"), r"[\w-]+")
        pattern += ".*" if documented.endswith("...") else ""
        return isinstance(actual, str) and re.fullmatch(pattern, actual, re.S) is not None
    return bool(documented == actual)


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dicts(item)


def _pairs(group: str) -> list[tuple[str, Any]]:
    pairs = []
    for key, raw in _PAIR.findall(group):
        if raw.startswith("[") and ("..." in raw or _GROUP in raw):
            continue  # a list shown in part
        pairs.append((key, json.loads(raw)))
    return pairs


def documented_mismatches(documented: str, answer: Any) -> list[str]:
    """Each documented object ({...}, innermost first) must be matched by one object of the answer, pair by pair."""
    text = re.sub(r"^\d{3} ", "", documented.strip())  # "202 {...}": the status is checked by the caller
    problems: list[str] = []
    while True:
        innermost = re.search(r"\{[^{}]*\}", text)
        if innermost is None:
            return problems
        pairs = _pairs(innermost.group())
        if pairs and not any(all(k in d and _value_matches(v, d[k]) for k, v in pairs) for d in _dicts(answer)):
            problems.append(innermost.group())
        text = text[: innermost.start()] + _GROUP + text[innermost.end() :]


# --- tests ----------------------------------------------------------------------------------------


def test_start_up_ends_with_the_development_key_and_a_curl_line(stack: Stack) -> None:
    lines = [line for line in stack.startup if line.strip()]
    assert lines[-3].startswith("development API key (all scopes; new, kept in ")
    assert re.fullmatch(r"  msk_[0-9a-f]{12}_[\w-]+", lines[-2])
    assert lines[-1].startswith(f"  try: curl -s -H 'Authorization: Bearer {stack.key}'") and f":{stack.port}/v1/moderate" in lines[-1]
    assert lines[-4].startswith(f"ready: API on http://127.0.0.1:{stack.port}, 1 worker(s)")
    assert sum('"crisis grammars ready"' in line for line in lines[:-4]) == 2  # the API's and the worker's, both before
    assert sum('"worker ready"' in line for line in lines[:-4]) == 1
    assert not any("onnx" in line.lower() for line in lines)  # the model file was built already: nothing about it
    assert (stack.data_dir / "dev-api-key").read_text().strip() == stack.key
    tried = subprocess.run(["bash", "-c", lines[-1].removeprefix("  try: ")], capture_output=True, text=True, timeout=60)
    assert json.loads(tried.stdout)["action"] == "allow"


def test_every_curl_example_answers_as_documented(stack: Stack) -> None:
    examples = curl_examples()
    assert len(examples) == 5
    callback = README.index('"callback_url": "https://forum.example.org/')
    assert f"MODERATION_CALLBACK_ALLOWED_HOSTS={CALLBACK_HOSTS} {SECRET_FROM} make run" in README[callback - 600 : callback]
    env = {**os.environ, "KEY": stack.key}
    for command, documented in examples:
        assert documented, command
        live = command.replace("http://127.0.0.1:8000", stack.url)
        ran = subprocess.run(["bash", "-c", live + " -w '\\n%{http_code}'"], env=env, capture_output=True, text=True, timeout=120)
        body, status = ran.stdout.rsplit("\n", 1)
        expected_status = re.match(r"(\d{3}) ", documented)
        assert status == (expected_status.group(1) if expected_status else "200"), (command, body)
        answer = json.loads(body)
        assert documented_mismatches(documented, answer) == [], (command, answer)


def test_every_readme_command(stack: Stack, workdir: Path) -> None:
    """Each `moderation-service` line of the README runs as shown and does what its comment says.

    Three are too slow for a test run (an hour, minutes, and the full dev sets): their options are
    checked against `--help` here, and what they compute is covered by the functional-suite and
    training tests.
    """
    (workdir / "my.csv").write_text(
        "text,label\nthanks everyone for the tips,0\nyou pathetic idiot,1\nlovely walk today,0\nshut up moron,1\n"
    )
    (workdir / "posts.jsonl").write_text(
        json.dumps({"id": 1, "text": "has anyone tried hydrotherapy?"})
        + "\n"
        + json.dumps({"id": 2, "title": "Y0U 1D10T", "text": "x"})
        + "\n"
    )
    checked: set[str] = set()

    def run(command: str, expect_code: int = 0) -> subprocess.CompletedProcess[str]:
        result = cli(workdir, command, stack)
        assert result.returncode == expect_code, (command, result.stdout[-2000:], result.stderr[-2000:])
        checked.add(command)
        return result

    created = run("moderation-service keys create --scope submit --keys-file .data/api-keys")
    assert "scopes submit" in created.stdout and created.stdout.strip().splitlines()[-1] in (stack.data_dir / "api-keys").read_text()
    check = run("moderation-service rules check rules/*.yaml")
    assert check.stdout.startswith("ok ") and check.stderr == ""
    tested = run("moderation-service rules test rules/peer-support.yaml")
    assert re.search(r"^(\d+) test\(s\): \1 passed, 0 failed$", tested.stdout, re.M)
    rendered = run("moderation-service rules render rules/peer-support.yaml --format html -o code-of-conduct.html")
    assert "wrote code-of-conduct.html (html, " in rendered.stderr and "<h" in (workdir / "code-of-conduct.html").read_text()
    built = run("moderation-service models build")
    assert built.stdout.startswith("up to date in ")
    evaluated = run("moderation-service eval my.csv --task toxicity --text-col text --label-col label")
    assert "my" in json.loads(evaluated.stdout) and (workdir / "eval-results").is_dir()
    classified = run("moderation-service classify posts.jsonl -o decisions.jsonl", expect_code=0)
    assert [json.loads(line)["action"] for line in (workdir / "decisions.jsonl").read_text().splitlines()] == ["allow", "hold"]
    assert "done: 2 decision(s)" in classified.stderr
    checked.add("moderation-service classify posts.jsonl -o decisions.jsonl [--rulebook NAME|PATH]")
    replayed = run("moderation-service rules replay rules/peer-support.yaml --corpus posts.jsonl")
    assert "0 of 2 decisions change" in replayed.stdout  # the live rulebook against itself
    exported = run("moderation-service feedback export --format csv")  # named in the routes table
    assert exported.stdout.startswith("decision_id,outcome,")
    for command in (
        "moderation-service train",
        "moderation-service eval --suite --out eval-results",
        "moderation-service train-risk-heads",
        "moderation-service train-abuse-heads",
        "moderation-service eval --abuse-dev --out eval-results",
        "moderation-service eval --functional crisis",
        "moderation-service eval --functional crisis --out eval-results",
        "moderation-service eval --functional abuse --out eval-results",
        "moderation-service eval --functional crisis --rules-only --out eval-results",
    ):
        words = command.split()
        help_text = cli(workdir, " ".join([*words[:2], "--help"]) if words[1] != "eval" else "moderation-service eval --help", stack)
        assert help_text.returncode == 0
        for option in (w for w in words if w.startswith("--")):
            assert option in help_text.stdout, (command, option)
        checked.add(command)
    assert set(readme_commands()) <= checked, set(readme_commands()) - checked


def test_escalations_handled_are_listed_with_status_acked(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.key}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as c:
        decision = c.post("/v1/moderate", json={"text": "Honestly everyone would be better off without me"}).json()
        assert decision["action"] == "escalate"
        waiting = c.get("/v1/escalations", params={"status": "open"}).json()["escalations"]
        mine = next(e for e in waiting if e["status"] == "open")
        assert c.post(f"/v1/escalations/{mine['id']}/ack").status_code == 200
        handled = c.get("/v1/escalations", params={"status": "acked"})
        assert handled.status_code == 200, handled.text
        row = next(e for e in handled.json()["escalations"] if e["id"] == mine["id"])
        assert row["status"] == "acked" and row["acked_by"] == stack.key.split("_")[1] and row["acked_at"] >= row["created_at"]
        assert mine["id"] not in [e["id"] for e in c.get("/v1/escalations").json()["escalations"]]
        bad = c.get("/v1/escalations", params={"status": "closed"})
        assert bad.status_code == 422 and "query parameter 'status'" in bad.json()["detail"]


def test_a_bad_query_parameter_is_named(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=30) as c:
        r = c.get("/v1/rulebooks/peer-support/code-of-conduct", params={"format": "pdf"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "validation_error" and body["detail"].startswith("query parameter 'format': ")
    assert "request body" not in body["detail"] and "pdf" not in body["detail"]


def test_stage_timings_add_up_from_the_first_request(tmp_path: Path, stack: Stack) -> None:
    """The stages of each decision sum to its total, and the model stage is a real model run."""
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=60) as c:
        for text in ("My knees are sore after physio", "Has anyone tried hydrotherapy for their back?"):
            timings = c.post("/v1/moderate", json={"text": text}).json()["timings_ms"]
            stages = {k: v for k, v in timings.items() if k != "total"}
            assert set(stages) == {"normalise", "rules", "crisis", "model:embedded", "policy"}
            assert abs(sum(stages.values()) - timings["total"]) <= 0.01 * len(stages), timings
            assert timings["model:embedded"] >= 0.5, timings  # a MiniLM pass takes milliseconds, not microseconds


def test_restart_keeps_the_key_and_picks_up_a_created_one_then_sigterm_stops_cleanly(stack: Stack, workdir: Path) -> None:
    """As the README says: the development key stays, and a key added to .data/api-keys works after a restart."""
    stop_stack(stack, signal.SIGINT)  # Ctrl-C
    added = cli(workdir, "moderation-service keys create --scope submit --keys-file .data/api-keys", stack)
    submit_key = next(word for word in added.stdout.split() if word.startswith("msk_"))
    again = start_stack(stack.log.parent, stack.data_dir, stack.port, stack.redis_port, "second")
    try:
        assert again.key == stack.key and "the same key as last time" in "\n".join(again.startup)
        with httpx.Client(base_url=again.url, headers={"Authorization": f"Bearer {submit_key}"}, timeout=30) as c:
            queued = c.post("/v1/submissions", json={"text": "hello all", "post_id": "restart-1"})
            assert queued.status_code == 202, queued.text
            assert c.post("/v1/moderate", json={"text": "hello"}).status_code == 403  # a submit key only
    finally:
        stop_stack(again, signal.SIGTERM)
