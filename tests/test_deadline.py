"""Deadline-aware answers and the model backlog.

The model here is a gate the test opens, so "the model is not done by the deadline" is a fact of the
test, not a race; nothing asserts how long anything took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from moderation_service.core.crisis import CrisisDetector
from moderation_service.core.decision import Action
from moderation_service.core.model_runs import RunQueue, units
from moderation_service.core.normalise import normalise
from moderation_service.core.options import PipelineOptions
from moderation_service.core.pipeline import PARTIAL_EXPECTED_LATE, PARTIAL_NOT_FINISHED, PARTIAL_OVERLOADED, Pipeline, Post
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import load_directory
from tests.conftest import Api, Keys
from tests.grammars import language_detector, shipped_grammars

RULES = Path(__file__).resolve().parent.parent / "rules"


class Gate:
    """Scores toxicity 0.9 once the test opens the gate; counts the calls that started."""

    name = "gate"
    version = "0"
    labels: tuple[str, ...] = ("toxicity",)

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        with self._lock:
            self.started += 1
        self.open.wait(30)
        return [{"toxicity": 0.9} for _ in texts]


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()


def gated_pipeline(gate: Gate, *, runners: int = 2, limit: int = 256, timeout: float | None = 5.0) -> Pipeline:
    directory = load_directory(RULES / "signposting")
    books = RulebookSet(RULES, "peer-support", directory.helpline_numbers())
    books.reload()
    options = PipelineOptions(classifier_timeout_s=timeout, classifier_timeout_per_kchar_s=0.0, model_queue_limit=limit)
    crisis = CrisisDetector(shipped_grammars(), language_detector())
    crisis.warm()  # compiled and loaded before the clock starts: a deadline here is about the model only
    crisis.detect({"body": normalise("I want to go to sleep and not wake up")}, None)
    return Pipeline(books, directory, [gate], crisis=crisis, options=options, runs=RunQueue(runners, limit))


def test_model_not_done_by_the_deadline_gives_a_partial_answer_then_the_full_one(gate: Gate) -> None:
    pipeline = gated_pipeline(gate)
    [answer] = pipeline.moderate_in_time([Post(text="see you at the meeting")], time.monotonic() + 0.05)
    assert answer.decision.partial and answer.decision.partial_reason == PARTIAL_NOT_FINISHED
    assert answer.decision.action is Action.allow and answer.decision.models == ()
    assert answer.full is not None and not answer.full.done()
    gate.open.set()
    full = answer.full.result(timeout=10)
    assert full.action is Action.hold and not full.partial and full.scores["toxicity"] == 0.9
    pipeline.close()


def test_rules_and_crisis_grammars_still_decide_a_partial_answer(gate: Gate) -> None:
    pipeline = gated_pipeline(gate)
    answers = pipeline.moderate_in_time([Post(text="you idiot"), Post(text="I'm going to kill myself tonight")], time.monotonic() + 0.05)
    insult, crisis = (a.decision for a in answers)
    assert insult.partial and insult.action is Action.hold
    assert crisis.partial and crisis.action is Action.escalate and not crisis.publish and crisis.signposting is not None
    pipeline.close()


def test_expected_run_time_past_the_deadline_answers_without_waiting(gate: Gate) -> None:
    """The moving estimate says the model needs 2 s a unit: a 100 ms deadline is answered at once."""
    pipeline = gated_pipeline(gate)
    pipeline.runs.record(1, 2.0)  # one measured run
    [answer] = pipeline.moderate_in_time([Post(text="hello there")], time.monotonic() + 0.1)
    assert answer.decision.partial_reason == PARTIAL_EXPECTED_LATE and answer.full is not None
    gate.open.set()
    assert answer.full.result(timeout=10).scores["toxicity"] == 0.9  # still finished in the background
    pipeline.close()


def test_full_backlog_answers_partial_without_queueing_more(gate: Gate) -> None:
    pipeline = gated_pipeline(gate, runners=1, limit=1)
    first = pipeline.moderate_in_time([Post(text="hello there")], time.monotonic() + 0.05)
    assert pipeline.overloaded()
    [second] = pipeline.moderate_in_time([Post(text="see you soon")], time.monotonic() + 0.05)
    assert second.decision.partial_reason == PARTIAL_OVERLOADED and second.full is None
    gate.open.set()
    assert first[0].full is not None and first[0].full.result(timeout=10)
    assert gate.started == 1
    pipeline.close()


def test_estimate_moves_with_measured_runs() -> None:
    runs = RunQueue(runners=2, limit_units=100)
    assert runs.expected_s("x" * 10) == 0.0  # nothing measured yet
    runs.record(1, 0.010)
    release = threading.Event()

    def blocked() -> None:  # fails once released: a failed call never feeds the estimate
        release.wait(10)
        raise RuntimeError("released")

    futures = [runs.submit(1, blocked), runs.submit(2, blocked)]  # 3 units running
    assert runs.expected_s("x" * 2500) == pytest.approx((3 / 2 + 3) * 0.010)
    release.set()
    for future in futures:
        assert isinstance(future.exception(timeout=10), RuntimeError)
    runs.record(3, 0.060)  # 20 ms a unit this time
    assert runs.unit_s == pytest.approx(0.8 * 0.010 + 0.2 * 0.020) and runs.backlog_units == 0
    assert units("") == 1 and units("x" * 1000) == 1 and units("x" * 1001) == 2
    runs.close()


def test_batch_past_its_budget_cancels_the_calls_still_waiting(gate: Gate) -> None:
    """#12 item 6: a batch whose budget runs out leaves no model work behind it, apart from the calls already running."""
    pipeline = gated_pipeline(gate, runners=1, timeout=0.2)
    decisions = pipeline.moderate_batch([Post(text=f"post number {i}") for i in range(5)])
    assert all(d.degraded and d.action is Action.hold for d in decisions)
    gate.open.set()
    pipeline.close()
    assert gate.started == 1, "only the call that had started ran; the other four were cancelled unstarted"


# --- over HTTP -----------------------------------------------------------------------------------------------------


def test_deadline_header_gives_a_partial_answer_in_time(api: Api, keys: Keys) -> None:
    with api.client(keys.moderate) as c:
        body = c.post("/v1/moderate", json={"text": "you idiot [fake sleep=0.5]"}, headers={"X-Moderation-Deadline-Ms": "100"}).json()
        whole = c.post("/v1/moderate", json={"text": "you idiot"}, headers={"X-Moderation-Deadline-Ms": "10000"}).json()
    assert body["partial"] is True and body["partial_reason"] and body["action"] == "hold" and body["models"] == []
    assert whole["partial"] is False and whole["partial_reason"] is None and whole["models"]


@pytest.mark.parametrize("value", ["0", "-5", "soon", "999999999"])
def test_bad_deadline_header_is_422(api: Api, keys: Keys, value: str) -> None:
    with api.client(keys.moderate) as c:
        response = c.post("/v1/moderate", json={"text": "hello"}, headers={"X-Moderation-Deadline-Ms": value})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")


def test_full_model_queue_sheds_requests_without_a_deadline(api: Api, keys: Keys, shared_pipeline: Pipeline) -> None:
    """A backlog at its limit: 503 + Retry-After without a deadline; with one, a partial answer instead."""
    saved, busy = shared_pipeline.runs, threading.Event()
    shared_pipeline.runs = RunQueue(saved.runners, 1)
    shared_pipeline.runs.submit(1, busy.wait)  # a model call that holds the one unit of backlog until released
    try:
        with api.client(keys.moderate) as c:
            shed = c.post("/v1/moderate", json={"text": "hello"})
            in_time = c.post("/v1/moderate", json={"text": "you idiot"}, headers={"X-Moderation-Deadline-Ms": "200"})
    finally:
        busy.set()
        shared_pipeline.runs.close()
        shared_pipeline.runs = saved
    assert shed.status_code == 503 and shed.headers["Retry-After"] == "1" and shed.json()["code"] == "overloaded"
    assert in_time.status_code == 200 and in_time.json()["partial_reason"] == PARTIAL_OVERLOADED and in_time.json()["action"] == "hold"
