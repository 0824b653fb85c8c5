"""Overload (#14): background model runs of partial answers take spare runner time only, and a shed run
leaves a safe answer (held when the rules or grammars saw anything), or a person's look once answered.

Runners are held by events the test releases, or slowed by scripted sleeps, so who waits behind whom
is a fact of the test; nothing asserts how long anything took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from moderation_service.bootstrap import build_services
from moderation_service.core.decision import Action
from moderation_service.core.model_runs import RunQueue, ShedError
from moderation_service.core.pipeline import PARTIAL_EXPECTED_LATE, PARTIAL_SHED, Post
from moderation_service.core.post import PostIn
from moderation_service.errors import OverloadedError
from moderation_service.service.in_time import finish_in_background, moderate_in_time, require_time_left
from tests.conftest import Keys, settings_for, start_server
from tests.queue_support import stop_process
from tests.test_deadline import Gate, gate, gated_pipeline  # noqa: F401 - the gate fixture

SIGNALLED = "I feel hopeless"  # the grammar reads low distress: allowed with signposting when the model has its say


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a runner blocked, whatever the test did


def _hold_the_runner(runs: RunQueue, release: threading.Event, work: int = 1) -> None:
    busy = runs.submit(work, lambda: release.wait(30))
    while not busy.running():  # the one runner has taken it
        time.sleep(0.001)


# --- the run queue ----------------------------------------------------------------------------------------------------


def test_background_calls_run_only_when_no_foreground_call_waits(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=100)
    _hold_the_runner(runs, release)
    order: list[str] = []
    later = runs.submit(1, lambda: order.append("background"), start_by=time.monotonic() + 60)
    now = runs.submit(1, lambda: order.append("foreground"))
    assert runs.background_units == 1 and runs.backlog_units == 2  # the running call and the foreground one
    release.set()
    later.result(timeout=10)
    now.result(timeout=10)
    assert order == ["foreground", "background"], "queued first, but only spare runner time serves the background lane"
    assert runs.background_units == 0 and runs.backlog_units == 0
    runs.close()


def test_a_background_call_that_could_not_start_in_time_is_shed_unstarted(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=100)
    _hold_the_runner(runs, release)
    ran: list[int] = []
    late = runs.submit(1, lambda: ran.append(1), start_by=time.monotonic() - 1)  # its time to start is over
    release.set()
    assert isinstance(late.exception(timeout=10), ShedError) and ran == []
    assert runs.shed == {"at_answer": 0, "after_answer": 1} and runs.background_units == 0
    runs.close()


def test_admission_counts_the_foreground_work_ahead_and_the_background_work_waiting(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=100)
    runs.record(1, 1.0)  # the model takes 1 s a unit
    assert runs.admit_background(1, time.monotonic() + 30), "an idle runner has room"
    _hold_the_runner(runs, release, work=4)  # 4 s of foreground work ahead
    assert not runs.admit_background(1, time.monotonic() + 3), "cannot start before the foreground lane is done"
    runs.submit(20, lambda: None, start_by=time.monotonic() + 60)  # 20 s of background work already waiting
    assert runs.admit_background(5, time.monotonic() + 30)  # 4 + 20 + 5 <= 30
    assert not runs.admit_background(10, time.monotonic() + 30)  # 4 + 20 + 10 > 30
    assert runs.shed == {"at_answer": 2, "after_answer": 0}
    release.set()
    runs.close()


def test_a_full_foreground_lane_admits_no_background_work(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=2)
    _hold_the_runner(runs, release, work=2)
    assert runs.overloaded() and not runs.admit_background(1, time.monotonic() + 60)
    release.set()
    runs.close()


# --- the pipeline and the service ---------------------------------------------------------------------------------------


def test_a_shed_partial_answer_is_safe_without_the_model(gate: Gate, release: threading.Event) -> None:  # noqa: F811
    """Rules-and-grammar "allow" stands only when they saw nothing; anything they saw is held for a person."""
    pipeline = gated_pipeline(gate, runners=1)
    pipeline.runs.record(1, 2.0)  # 2 s a unit, and 2 units ahead: nothing can start inside the 5 s budget
    _hold_the_runner(pipeline.runs, release, work=2)
    texts = ["see you soon", SIGNALLED, "you idiot", "some days I wish I wasn't here"]
    answers = pipeline.moderate_in_time([Post(text=t) for t in texts], time.monotonic() + 0.05)
    assert all(a.shed and a.full is None and a.decision.partial_reason == PARTIAL_SHED for a in answers)
    plain, signalled, insult, ideation = (a.decision for a in answers)
    assert plain.action is Action.allow and plain.publish and not plain.reasons
    assert signalled.action is Action.hold and not signalled.publish and signalled.distress_level.value == "low"
    assert insult.action is Action.hold  # already held by its rule
    assert ideation.action is Action.escalate  # already escalated by the grammar
    assert pipeline.runs.shed["at_answer"] == 4
    release.set()
    gate.open.set()
    pipeline.close()
    assert gate.started == 0, "no model run for a shed post"


def test_a_run_shed_after_its_answer_sends_a_signalled_post_to_a_person(
    gate: Gate,  # noqa: F811
    release: threading.Event,
    shared_rules: Path,
    keys: Keys,
    redis_url: str,
) -> None:
    pipeline = gated_pipeline(gate, runners=1, timeout=0.5)
    services = build_services(settings_for(shared_rules, keys, redis_url), pipeline=pipeline)
    _hold_the_runner(pipeline.runs, release)
    results = moderate_in_time(services, [PostIn(text=SIGNALLED), PostIn(text="see you soon")], time.monotonic())
    assert [r.decision.partial_reason for r in results] == [PARTIAL_EXPECTED_LATE] * 2, "admitted to the background lane"
    assert [r.decision.action for r in results] == [Action.allow] * 2  # the model may still have its say
    finish_in_background(services, results, ["p-signalled", "p-plain"])
    time.sleep(0.6)  # past the 0.5 s model budget: neither can start in time any more
    release.set()
    store = services.require_store()
    escalated: list[Any] = []
    for _ in range(200):  # the shed is noticed once the runner is free, the write happens on the background pool
        escalated = store.open_escalations()
        if escalated and pipeline.runs.shed["after_answer"] == 2:
            break
        time.sleep(0.05)
    assert pipeline.runs.shed["after_answer"] == 2
    assert [e.post_id for e in escalated] == ["p-signalled"], "only the post the grammar had something to say about"
    assert gate.started == 0
    gate.open.set()
    services.close()


def test_a_request_that_waited_past_its_whole_budget_is_shed() -> None:
    with pytest.raises(OverloadedError):
        require_time_left(time.monotonic() - 0.2, 100)
    require_time_left(time.monotonic(), 10_000)


# --- a real server, one runner, a slow model ---------------------------------------------------------------------------


def _counts(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith(("moderation_model_runs_total", "moderation_background_runs_shed_total", "moderation_model_b")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_a_burst_on_one_slow_runner_is_answered_and_every_post_is_run_or_counted_shed(tmp_path: Path, keys: Keys) -> None:
    """16 posts at once, 0.3 s of model each, one runner, a 1 s model budget: more than the runner can carry.

    A 1 s answer budget: a few are answered with the model, the rest partial (the test needs no server fast enough
    to get any particular one in time)."""
    server = start_server(tmp_path, keys, {"MODERATION_CLASSIFIER_THREADS": "1"}, cli=True)
    try:
        with server.client(keys.moderate) as c:
            assert c.post("/v1/moderate", json={"text": "warm up [fake sleep=0.3]"}).status_code == 200  # the estimate learns
        before = _counts(server.url)
        texts = [f"post {i} [fake sleep=0.3]" + (f" {SIGNALLED}" if i % 2 else "") for i in range(16)]

        def ask(text: str) -> httpx.Response:
            with server.client(keys.moderate) as c:
                return c.post("/v1/moderate", json={"text": text}, headers={"X-Moderation-Deadline-Ms": "1000"})

        with ThreadPoolExecutor(max_workers=16) as clients:
            answers = list(clients.map(ask, texts))
        for _ in range(600):  # until the runner has finished or shed every background run
            now = _counts(server.url)
            if now["moderation_model_backlog_units"] == 0 and now["moderation_model_background_units"] == 0:
                break
            time.sleep(0.1)
        after = _counts(server.url)
    finally:
        assert stop_process(server.process) == 0
    assert [a.status_code for a in answers] == [200] * 16
    bodies = [a.json() for a in answers]
    assert all(b["partial"] or b["models"] for b in bodies), "every answer is partial or full"
    for text, body in zip(texts, bodies, strict=True):
        if body["partial_reason"] == PARTIAL_SHED and SIGNALLED in text:
            assert body["action"] == "hold" and body["publish"] is False
    ran = after["moderation_model_runs_total"] - before["moderation_model_runs_total"]
    shed = sum(after[f'moderation_background_runs_shed_total{{when="{w}"}}'] for w in ("at_answer", "after_answer"))
    assert shed >= 1, "one runner cannot start 16 runs of 0.3 s inside a 1 s budget"
    assert ran + shed == 16, "no post lost: each one's model ran, or its shed was counted"
