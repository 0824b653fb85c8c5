"""The crisis corpus's dev split: stable per file, twin pairs on one side, false-positive budgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from moderation_service.training.risk_heads import (
    CorpusPost,
    _negatives_for,
    _stratified,
    false_positive_point,
    kind_budget_point,
    load_corpus,
)

CORPUS = Path(__file__).resolve().parent.parent / "models" / "training_data" / "crisis"
REQUIRED = {"text", "level", "dimensions", "kind"}


def _posts(source: str, count: int, kinds: tuple[str, ...] = ("a", "b")) -> list[CorpusPost]:
    return [CorpusPost(f"{source} {i}", "none", (), kinds[i % len(kinds)], source) for i in range(count)]


def test_adding_a_file_moves_no_other_files_posts() -> None:
    before = _posts("alpha", 50) + _posts("omega", 50)
    after = _posts("alpha", 50) + _posts("middle", 40) + _posts("omega", 50)
    dev_before = {p.text for p in _stratified(before, 0.2, 13)[1]}
    dev_after = {p.text for p in _stratified(after, 0.2, 13)[1] if p.source != "middle"}
    assert dev_before == dev_after
    assert len(dev_before) == 20


def test_the_seed_still_chooses_the_split() -> None:
    posts = _posts("alpha", 100)
    assert {p.text for p in _stratified(posts, 0.2, 13)[1]} != {p.text for p in _stratified(posts, 0.2, 14)[1]}


def test_a_twin_pair_stays_on_one_side() -> None:
    posts = [
        CorpusPost(f"twin {i} {side}", level, (), f"twin_x_{side}", "twins", f"pair-{i}")
        for i in range(60)
        for side, level in (("risk", "high"), ("safe", "none"))
    ]
    train, dev = _stratified(posts, 0.2, 13)
    dev_pairs = {p.pair for p in dev}
    assert len(dev) == 24 and len(dev_pairs) == 12
    assert not dev_pairs & {p.pair for p in train}


def test_the_shipped_twins_are_paired_in_the_corpus() -> None:
    posts = [p for p in load_corpus(CORPUS) if p.source == "contrastive_twins"]
    pairs: dict[str, list[CorpusPost]] = {}
    for post in posts:
        if post.pair:
            pairs.setdefault(post.pair, []).append(post)
    assert len(pairs) >= 690
    for members in pairs.values():  # one with risk, one without
        assert sorted(m.level in ("high", "imminent") for m in members) == [False, True], members[0].pair


def test_the_false_positive_point_keeps_the_budget() -> None:
    negatives = np.linspace(0.0, 1.0, 1001)
    t = false_positive_point(negatives, 0.05)
    assert (negatives >= t).mean() <= 0.05
    assert (negatives >= t - 0.01).mean() > 0.05  # the lowest such point on the grid
    assert false_positive_point(np.full(10, 0.2), 0.0) == 0.21


def test_negatives_are_posts_below_the_heads_level() -> None:
    dev = [CorpusPost(str(i), level, (), "k", "s") for i, level in enumerate(("none", "low", "high", "imminent"))]
    assert _negatives_for("level.imminent", dev).tolist() == [True, True, True, False]
    assert _negatives_for("level.any", dev).tolist() == [True, True, False, False]
    assert _negatives_for("risk.means", dev).tolist() == [True, True, False, False]
    low_mood = [CorpusPost("a", "low", ("hopelessness",), "k", "s"), CorpusPost("b", "none", (), "k", "s")]
    assert _negatives_for("risk.hopelessness", low_mood).tolist() == [False, True]  # its own positives are not its negatives


def test_corpus_lines_carry_only_known_keys() -> None:
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            keys = set(json.loads(line))
            assert REQUIRED <= keys <= {*REQUIRED, "pair"}, f"{path.name}:{number}"


def test_the_kind_budget_holds_for_every_kind_with_enough_posts() -> None:
    # 100 everyday posts scored low, 25 sign-offs scored high, 5 of a rare kind (too few to judge) in between.
    probs = np.array([0.1] * 100 + list(np.linspace(0.5, 0.9, 25)) + [0.3] * 5)
    kinds = ["everyday"] * 100 + ["signoff"] * 25 + ["rare"] * 5
    t = kind_budget_point(probs, kinds, 0.04)
    assert ((probs[100:125]) >= t).mean() <= 0.04  # one sign-off of 25 at most
    assert ((probs[100:125]) >= t - 0.01).mean() > 0.04  # the lowest such point
    assert false_positive_point(probs, 0.04) < t  # pooled, the sign-offs would have hidden among the everyday posts
    assert kind_budget_point(probs[:100], kinds[:100], 0.0) == 0.11
    assert kind_budget_point(np.r_[probs[:125], [0.99] * 5], kinds, 0.04) == t  # five posts are too few to hold to it
