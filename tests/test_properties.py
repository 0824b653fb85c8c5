"""Property tests: the policy never gets milder as a score rises, and rule spans point at the matched words."""

from __future__ import annotations

import functools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation_service.core.author import AuthorFacts
from moderation_service.core.decision import SEVERITY, Action, TextField
from moderation_service.core.normalise import normalise
from moderation_service.core.policy import PolicyInput, decide
from moderation_service.core.rulebook import Rulebook, load_rulebook
from moderation_service.core.signposting import SignpostDirectory, load_directory

RULES = Path(__file__).resolve().parent.parent / "rules"
LOCALE = "en-GB"  # the locale the peer-support rulebook's own tests are written for
NEUTRAL = ["hello", "the", "garden", "knees", "walk", "today", "physio", "tea", "rain", "again"]


@functools.cache
def directory() -> SignpostDirectory:
    return load_directory(RULES / "signposting")


@functools.cache
def book() -> Rulebook:
    return load_rulebook(RULES / "peer-support.yaml", directory().helpline_numbers())


def action_for(label: str, score: float) -> Action:
    return decide(PolicyInput(book(), [], {label: score}, (), LOCALE, Action.hold), directory()).action


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["toxicity", "identity_attack", "threat", "distress", "suicide_risk"]),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
)
def test_a_higher_score_never_gives_a_milder_action(label: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert SEVERITY[action_for(label, high)] >= SEVERITY[action_for(label, low)]


def _cased(phrase: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c for c, flip in zip(phrase, flips + [False] * len(phrase), strict=False))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(NEUTRAL), max_size=6),
    st.lists(st.sampled_from(NEUTRAL), max_size=6),
    st.lists(st.booleans(), max_size=12),
    st.sampled_from([TextField.body, TextField.title]),
)
def test_rule_spans_point_at_the_matched_words(before: list[str], after: list[str], flips: list[bool], field: TextField) -> None:
    phrase = _cased("you idiot", flips)
    prefix = " ".join(before) + (" " if before else "")
    text = prefix + phrase + (" " if after else "") + " ".join(after)
    hits = book().matcher.match({field.value: normalise(text)}, AuthorFacts(), "GB")
    insults = [hit for hit in hits if hit.rule.id == "harassment.insult"]
    assert insults, "the inserted insult must be found"
    for hit in insults:
        assert hit.field == field.value
        assert text[hit.start : hit.end] == phrase
