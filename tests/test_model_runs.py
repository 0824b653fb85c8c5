"""The model run queue: arrival order, a bounded backlog, cancellation, failures and a clean stop.

Runners are held by an event the test releases, so "who waits behind whom" is a fact of the test,
not a race; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from moderation_service.core.decision import Action
from moderation_service.core.model_runs import QueueClosedError, RunQueue, runners_for
from moderation_service.core.options import PipelineOptions
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import load_directory
from tests.conftest import Keys, start_server
from tests.fake_classifier import FakeClassifier
from tests.queue_support import stop_process

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a runner blocked, whatever the test did


def test_calls_run_in_arrival_order_behind_a_busy_runner(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=1000)
    order: list[int] = []
    blocker = runs.submit(1, lambda: release.wait(10))
    futures = [runs.submit(1, lambda i=i: order.append(i)) for i in range(50)]  # type: ignore[misc]
    assert runs.backlog_units == 51
    release.set()
    for future in [blocker, *futures]:
        future.result(timeout=10)
    assert order == list(range(50)) and runs.backlog_units == 0 and runs.runs == 51
    runs.close()


def test_submitters_on_many_threads_are_served_in_the_order_they_queued(release: threading.Event) -> None:
    """Eight threads queue 25 calls each while both runners are held: every thread's calls run in the order it queued them,
    and the queue's own order (recorded as each call joins it) is the order in which calls start."""
    runs = RunQueue(runners=2, limit_units=10_000)
    joined: list[tuple[int, int]] = []
    started: list[tuple[int, int]] = []
    lock = threading.Lock()
    blockers = [runs.submit(1, lambda: release.wait(10)) for _ in range(2)]

    def submitter(t: int) -> None:
        for i in range(25):
            with lock:  # joining the queue and noting it happen together, so ``joined`` is the queue's order
                runs.submit(1, lambda key=(t, i): started.append(key))  # type: ignore[misc]
                joined.append((t, i))

    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not started, "both runners are held"
    release.set()
    for blocker in blockers:
        blocker.result(timeout=10)
    runs.close(timeout=10)
    assert len(started) == 200 and sorted(started) == sorted(joined)
    for t in range(8):
        assert [i for tt, i in started if tt == t] == list(range(25))
    # Two runners: a call may start just after the one queued right behind it, never later than that.
    position = {key: n for n, key in enumerate(joined)}
    assert all(position[key] <= n + 1 for n, key in enumerate(started))


def test_backlog_limit_is_reported_and_freed_when_calls_end(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=3)
    futures = [runs.submit(1, lambda: release.wait(10)), runs.submit(2, lambda: None)]
    assert runs.overloaded()
    release.set()
    for future in futures:
        future.result(timeout=10)
    assert not runs.overloaded() and runs.backlog_units == 0
    runs.close()


def test_a_cancelled_call_never_runs_and_leaves_the_backlog(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=100)
    ran: list[str] = []
    blocker = runs.submit(1, lambda: release.wait(10))
    unwanted = runs.submit(5, lambda: ran.append("unwanted"))
    wanted = runs.submit(1, lambda: ran.append("wanted"))
    assert unwanted.cancel()
    release.set()
    blocker.result(timeout=10)
    wanted.result(timeout=10)
    assert ran == ["wanted"] and runs.backlog_units == 0
    runs.close()


def test_a_failing_call_fails_only_its_own_future_and_the_runner_goes_on() -> None:
    runs = RunQueue(runners=1, limit_units=100)

    def broken() -> None:
        raise RuntimeError("onnx exploded")

    failed, fine = runs.submit(1, broken), runs.submit(1, lambda: 42)
    assert isinstance(failed.exception(timeout=10), RuntimeError) and fine.result(timeout=10) == 42
    assert runs.unit_s is not None and runs.runs == 2
    runs.close()


def test_close_cancels_waiting_calls_lets_the_running_one_finish_and_joins_the_runners(release: threading.Event) -> None:
    runs = RunQueue(runners=1, limit_units=100, name="close-test-runner")
    began = threading.Event()

    def run() -> str:
        began.set()
        release.wait(10)
        return "finished"

    running = runs.submit(1, run)
    waiting = runs.submit(1, lambda: "never")
    assert began.wait(10)
    closing = threading.Thread(target=runs.close)
    closing.start()
    while not waiting.done():  # close cancels the waiting call before it joins the runner
        pass
    release.set()
    closing.join(10)
    assert waiting.cancelled() and running.result(timeout=1) == "finished" and runs.backlog_units == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("close-test-runner")], "a runner outlived close()"
    late = runs.submit(1, lambda: "too late")
    assert isinstance(late.exception(timeout=1), QueueClosedError)


def test_runners_never_outnumber_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert runners_for(16) == min(16, cores) and runners_for(1) == 1 and runners_for(16, model_threads=cores) == 1


def _pipeline(classifier: FakeClassifier) -> Pipeline:
    directory = load_directory(RULES / "signposting")
    books = RulebookSet(RULES, "peer-support", directory.helpline_numbers())
    books.reload()
    return Pipeline(books, directory, [classifier], options=PipelineOptions(classifier_timeout_s=5.0), runs=RunQueue(1, 100))


def test_an_unexpected_model_error_becomes_the_safe_fallback_decision() -> None:
    """Not a ClassifierError: any exception on a runner degrades the post to the fallback action (fail closed)."""

    def explode(text: str) -> dict[str, float]:
        raise MemoryError("the model ran out of memory")

    pipeline = _pipeline(FakeClassifier(explode))
    decision = pipeline.moderate(Post(text="see you at the meeting"))
    assert decision.action is Action.hold and decision.degraded and not decision.publish
    assert pipeline.moderate(Post(text="see you at the meeting")).degraded, "the runner survived the first failure"
    pipeline.close()


def test_model_error_over_http_is_a_decision_not_a_500(tmp_path: Path, keys: Keys) -> None:
    server = start_server(tmp_path, keys)
    try:
        with server.client(keys.moderate) as c:
            response = c.post("/v1/moderate", json={"text": "see you soon [fake fail]"})
        assert response.status_code == 200 and response.json()["action"] == "hold" and response.json()["degraded"]
        assert response.headers["server-timing"].startswith("app;dur=")  # the server's own share of the latency
    finally:
        stop_process(server.process)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_server_with_busy_runners_stops_cleanly(tmp_path: Path, keys: Keys, signum: int) -> None:
    """A model call in flight when the signal comes: its request is answered, the runners stop, the process exits 0."""
    server = start_server(tmp_path, keys, {"MODERATION_CLASSIFIER_TIMEOUT_S": "10"}, cli=True)

    def ask(i: int) -> int:
        with server.client(keys.moderate) as c:
            return c.post("/v1/moderate", json={"text": f"post {i} [fake sleep=1]"}).status_code

    while "crisis grammars ready" not in server.log_text():
        time.sleep(0.1)  # a daemon thread still compiling grammars in C++ when the process exits aborts it (not this test's subject)
    with ThreadPoolExecutor(max_workers=3) as clients:
        try:
            answers = [clients.submit(ask, i) for i in range(3)]
            while _backlog(server.url) < 3 and not any(a.done() for a in answers):
                pass  # until all three calls have reached the run queue
        finally:
            code = stop_process(server.process, signum=signum)
        assert code == 0, "the runners stopped and the process exited cleanly"
        assert [a.result(timeout=30) for a in answers] == [200, 200, 200], "requests in flight were answered before the stop"


def _backlog(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith("moderation_model_backlog_units "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no moderation_model_backlog_units")
