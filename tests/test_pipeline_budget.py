"""Model time budgets are per post, scale with length, stop overrunning calls, and never apply to batch tools."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import PipelineSettings, Settings
from moderation_service.core.decision import Action
from moderation_service.core.options import PipelineOptions
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import load_directory
from moderation_service.errors import ClassifierError

RULES = Path(__file__).resolve().parent.parent / "rules"


class SlowWindows:
    """Sleeps per 1,000 characters like a model runs per window, and stops at its deadline."""

    name = "slow"
    version = "0"
    labels: tuple[str, ...] = ("toxicity",)
    accepts_deadline = True

    def __init__(self, seconds_per_kchar: float) -> None:
        self.seconds_per_kchar = seconds_per_kchar
        self.windows_run = 0
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str], deadline: float | None = None) -> list[dict[str, float]]:
        for _ in range(max(1, len(texts[0]) // 1000)):
            if deadline is not None and time.monotonic() >= deadline:
                raise ClassifierError("stopped at deadline")
            time.sleep(self.seconds_per_kchar)
            with self._lock:
                self.windows_run += 1
        return [{"toxicity": 0.0}]


def pipeline(classifier: SlowWindows, timeout: float | None, per_kchar: float = 0.0) -> Pipeline:
    directory = load_directory(RULES / "signposting")
    books = RulebookSet(RULES, "peer-support", directory.helpline_numbers())
    books.reload()
    options = PipelineOptions(classifier_timeout_s=timeout, classifier_timeout_per_kchar_s=per_kchar)
    return Pipeline(books, directory, [classifier], options=options)


def test_budget_grows_with_length() -> None:
    p = pipeline(SlowWindows(0.0), timeout=1.0, per_kchar=0.5)
    assert p.budget_s("x" * 100) == pytest.approx(1.05)
    assert p.budget_s("x" * 10_000) == pytest.approx(6.0)
    assert pipeline(SlowWindows(0.0), timeout=None).budget_s("x" * 10_000) is None


def test_a_long_post_is_judged_within_its_own_longer_budget() -> None:
    model = SlowWindows(0.05)  # 10,000 characters take 0.5 s
    decision = pipeline(model, timeout=0.2, per_kchar=0.1).moderate(Post(text="word " * 2000))
    assert not decision.degraded


def test_an_overrunning_call_stops_and_does_not_starve_its_neighbours() -> None:
    model = SlowWindows(0.1)  # 19,000 characters would take 1.9 s
    p = pipeline(model, timeout=0.3)
    started = time.monotonic()
    slow, quick = p.moderate_batch([Post(text="word " * 3800), Post(text="hello there")])
    assert slow.degraded and slow.action is Action.hold
    assert not quick.degraded and quick.action is Action.allow
    time.sleep(0.3)
    assert model.windows_run <= 6, "the timed-out call kept running past its deadline"
    assert time.monotonic() - started < 1.5


def test_without_a_budget_nothing_times_out() -> None:
    model = SlowWindows(0.02)
    decisions = pipeline(model, timeout=None).moderate_batch([Post(text="word " * 2000)] * 3)
    assert not any(d.degraded for d in decisions)


def _burn(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    stop = multiprocessing.Event()
    workers = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    yield
    stop.set()
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0


@pytest.mark.model
@pytest.mark.slow
def test_long_posts_on_a_busy_cpu_are_never_degraded_in_batch_tools(busy_cpu: None) -> None:
    p = build_pipeline(Settings(pipeline=PipelineSettings(classifier_timeout_s=None)))  # what `classify` and `eval` use
    long_post = ("My knees are bad today and the physio was rough. " * 380)[:19_000]
    decisions = p.moderate_batch([Post(text=long_post)] * 4)
    assert not any(d.degraded for d in decisions)
    assert all(d.timings_ms["model:embedded"] > 0 for d in decisions)
