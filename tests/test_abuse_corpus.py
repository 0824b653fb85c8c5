"""The project's abuse dev corpus (models/training_data/abuse): well-formed, varied, and what the rules were tuned on.

The corpus is development data for the abuse, hate and selling rules; the functional suite in
tests/suites/abuse is the independent measure and is kept apart (tests/test_functional_suites.py).
Only the rulebook is checked here (no model), so the test is fast and the figure is the rules' own.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from moderation_service.core.author import AuthorFacts
from moderation_service.core.normalise import normalise
from moderation_service.core.rulebook import Rulebook, load_rulebook

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "models" / "training_data" / "abuse"
EXPECTS = {"hold", "allow", "escalate"}


def _posts() -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*.jsonl")) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def book() -> Rulebook:
    return load_rulebook(ROOT / "rules" / "peer-support.yaml")


def test_corpus_is_well_formed_and_varied() -> None:
    posts = _posts()
    assert len(posts) >= 600
    texts = [str(p["text"]) for p in posts]
    assert len(set(texts)) == len(texts)
    for post in posts:
        assert set(post) <= {"text", "expect", "kind", "target", "author"}, post
        assert post["expect"] in EXPECTS and post["kind"], post
    kinds = Counter(str(p["kind"]) for p in posts)
    assert len(kinds) >= 25
    expects = Counter(str(p["expect"]) for p in posts)
    assert expects["allow"] >= 250 and expects["hold"] >= 250


def test_rules_decide_the_corpus(book: Rulebook) -> None:
    wrong = []
    for post in _posts():
        author = AuthorFacts.model_validate(post.get("author") or {})
        hits = book.matcher.match({"body": normalise(str(post["text"]))}, author, "GB")
        held = any(hit.rule.action.value != "allow" for hit in hits)
        if held != (post["expect"] != "allow"):
            wrong.append(str(post["text"])[:60])
    assert len(wrong) <= 10, wrong  # a few hard cases (pronoun-only targets) are left to the model
