"""Policy and pipeline logic with the FakeClassifier (the HTTP tests cover the same through the API)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from moderation_service.core.crisis import CrisisDetector
from moderation_service.core.decision import Action
from moderation_service.core.options import PipelineOptions
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.core.rulebook.registry import RulebookSet
from moderation_service.core.signposting import load_directory
from moderation_service.errors import InputError, TextTooLongError
from tests.fake_classifier import FAKE_HEADS, FakeClassifier
from tests.grammars import shipped_grammars

RULES = Path(__file__).resolve().parent.parent / "rules"


@functools.cache
def crisis() -> CrisisDetector:
    return CrisisDetector(shipped_grammars())


def pipeline(*classifiers: FakeClassifier, timeout: float = 1.0, fallback: Action = Action.hold) -> Pipeline:
    directory = load_directory(RULES / "signposting")
    books = RulebookSet(RULES, "peer-support", directory.helpline_numbers())
    books.reload()
    options = PipelineOptions(classifier_timeout_s=timeout, fallback_action=fallback)
    return Pipeline(books, directory, classifiers, crisis=crisis(), options=options)


HEADS = dict.fromkeys(FAKE_HEADS, 0.5)


def scores(**values: float) -> FakeClassifier:
    return FakeClassifier(lambda text: dict(values), operating_points=HEADS)


@pytest.mark.parametrize(
    ("values", "action", "level"),
    [
        ({"toxicity": 0.5}, Action.allow, "none"),
        ({"toxicity": 0.95}, Action.hold, "none"),
        ({"threat": 0.85}, Action.hold, "none"),
        ({"threat": 0.99}, Action.escalate, "none"),
        ({"distress": 0.7}, Action.allow, "low"),
        ({"distress": 0.97}, Action.allow, "low"),
        ({"suicide_risk": 0.8}, Action.allow, "none"),
        ({"suicide_risk": 0.95}, Action.allow, "low"),
        ({"level.any": 0.9}, Action.escalate, "high"),
        ({"level.imminent": 0.9}, Action.escalate, "imminent"),
        ({"risk.passive_ideation": 0.9}, Action.escalate, "high"),
        ({"risk.passive_ideation": 0.9, "risk.means": 0.9}, Action.escalate, "imminent"),
        ({"risk.means": 0.3}, Action.allow, "none"),
    ],
)
def test_thresholds_map_scores_to_actions(values: dict[str, float], action: Action, level: str) -> None:
    decision = pipeline(scores(**values)).moderate(Post(text=f"some words {len(values)}"))
    assert decision.action is action and decision.distress_level == level
    if level != "none":
        assert decision.signposting is not None


def test_most_severe_wins_and_reasons_keep_all_sources() -> None:
    decision = pipeline(scores(toxicity=0.95, **{"level.imminent": 0.9})).moderate(Post(text="you idiot"))
    assert decision.action is Action.escalate and decision.publish is False
    assert {r.source for r in decision.reasons} == {"rule", "model", "crisis"}


def test_max_over_classifiers() -> None:
    decision = pipeline(scores(toxicity=0.1), scores(toxicity=0.95)).moderate(Post(text="x"))
    assert decision.scores["toxicity"] == 0.95 and decision.action is Action.hold


def test_failure_falls_back_to_configured_action() -> None:
    def boom(text: str) -> dict[str, float]:
        raise RuntimeError("model exploded")

    decision = pipeline(FakeClassifier(boom), fallback=Action.escalate).moderate(Post(text="hello"))
    assert decision.action is Action.escalate and decision.degraded
    assert decision.reasons[-1].id == "moderation_degraded"


def test_timeout_falls_back_without_waiting_for_the_model() -> None:
    def slow(text: str) -> dict[str, float]:
        time.sleep(2)
        return {}

    decision = pipeline(FakeClassifier(slow), timeout=0.2).moderate(Post(text="hello"))
    assert decision.action is Action.hold and decision.degraded


def test_out_of_range_scores_count_as_failure() -> None:
    decision = pipeline(scores(toxicity=7.0)).moderate(Post(text="hello"))
    assert decision.degraded and decision.action is Action.hold


def test_batch_decisions_are_in_order() -> None:
    posts = [Post(text="hello"), Post(text="you idiot"), Post(text="I want to die")]
    assert [d.action for d in pipeline().moderate_batch(posts)] == [Action.allow, Action.hold, Action.escalate]


def test_input_checks() -> None:
    p = pipeline()
    with pytest.raises(InputError):
        p.moderate(Post(text="  "))
    with pytest.raises(TextTooLongError):
        p.moderate(Post(text="x" * 20_001))


def test_fallback_action_may_not_be_allow() -> None:
    from pydantic import ValidationError

    from moderation_service.config import PipelineSettings

    with pytest.raises(ValidationError, match="fallback_action"):
        PipelineSettings(fallback_action=Action.allow)


def test_stage_timings_add_up_to_the_total() -> None:
    decision = pipeline(scores(toxicity=0.1)).moderate(Post(text="my knees hurt after the walk"))
    stages = {k: v for k, v in decision.timings_ms.items() if k != "total"}
    assert {"normalise", "rules", "crisis", "model:fake", "policy"} <= set(stages)
    assert decision.timings_ms["total"] == pytest.approx(sum(stages.values()), abs=0.01)
