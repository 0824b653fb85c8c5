"""The functional suites: well-formed, independent of every training file, and their CI gates held.

The suites (tests/suites/crisis, tests/suites/abuse) are evaluation data only. The gates run the
real embedded model, the crisis grammars and the default rulebook on every case; the report shows
the issue's target and the CI ratchet for each gate (see moderation_service/training/functional.py).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from moderation_service.bootstrap import build_pipeline
from moderation_service.config import PipelineSettings, Settings
from moderation_service.core.decision import Action, DistressLevel
from moderation_service.core.pipeline import Post
from moderation_service.training.functional import GATES, load_suite, run_suite, save_report

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "tests" / "suites"
TRAINING = ROOT / "models" / "training_data"
NEAR_DUPLICATE = 0.6  # cosine of character 4-gram TF-IDF vectors; paraphrases of one sentence score above it


def _training_texts() -> list[str]:
    texts = [
        json.loads(line)["text"]
        for corpus in ("crisis", "crisis_next", "abuse", "abuse_train", "abuse_next")
        for path in sorted((TRAINING / corpus).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line
    ]
    handwritten = yaml.safe_load((TRAINING / "handwritten.yaml").read_text(encoding="utf-8"))
    texts += [str(t) for group in handwritten["groups"] for t in group["texts"]]
    texts += [str(t) for pool in handwritten["pools"].values() for t in pool]
    return texts


def test_ordinary_posts_check_shares_no_text_with_the_crisis_corpus() -> None:
    """The ordinary-posts check (models/eval) judges the risk heads, so it stays apart from their corpus."""
    ordinary_file = Path(__file__).parents[1] / "models" / "eval" / "ordinary_short_posts.jsonl"
    ordinary = [json.loads(line)["text"] for line in ordinary_file.read_text(encoding="utf-8").splitlines() if line]
    corpus = [
        json.loads(line)["text"]
        for folder in ("crisis", "crisis_next")
        for path in sorted((TRAINING / folder).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line
    ]
    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True).fit(ordinary + corpus)
    similarity = vectoriser.transform(ordinary) @ vectoriser.transform(corpus).T
    best = np.asarray(similarity.max(axis=1).todense()).ravel()
    worst = int(best.argmax())
    assert best[worst] < NEAR_DUPLICATE, f"{ordinary[worst]!r} is a near-duplicate of crisis corpus text ({best[worst]:.2f})"


@pytest.mark.parametrize(("name", "cases", "functionalities"), [("crisis", 400, 25), ("abuse", 600, 25)])
def test_suite_is_well_formed(name: str, cases: int, functionalities: int) -> None:
    suite = load_suite(SUITES / name)
    ids = [case.id for func in suite for case in func.cases]
    assert len(ids) >= cases and len(suite) >= functionalities
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    by_id = {case.id: case for func in suite for case in func.cases}
    for case in by_id.values():
        if case.pair is not None:
            assert case.pair in by_id, f"{case.id} pairs with missing {case.pair}"
            assert case.expect != by_id[case.pair].expect or name == "abuse", f"{case.id} and its pair expect the same"


def test_no_suite_case_is_a_near_duplicate_of_training_text() -> None:
    suite = [case.text for name in ("crisis", "abuse") for func in load_suite(SUITES / name) for case in func.cases]
    training = _training_texts()
    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True).fit(suite + training)
    similarity = vectoriser.transform(suite) @ vectoriser.transform(training).T
    best = np.asarray(similarity.max(axis=1).todense()).ravel()
    worst = int(best.argmax())
    assert best[worst] < NEAR_DUPLICATE, f"suite case {suite[worst][:60]!r} is a near-duplicate of training text ({best[worst]:.2f})"


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("name", ["crisis", "abuse"])
def test_functional_suite_ci_gates(name: str, tmp_path: Path) -> None:
    pipeline = build_pipeline(Settings(pipeline=PipelineSettings(classifier_timeout_s=None)))
    report, outcomes = run_suite(name, SUITES / name, pipeline)
    paths = save_report(report, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(outcomes) == sum(f["cases"] for f in report.functionalities.values())
    assert set(report.gates) == {gate.name for gate in GATES[name]}
    failed = {gate: row for gate, row in report.gates.items() if not row["ci_passed"]}
    assert not failed, failed


# Ratchet for the ordinary-posts check (models/README.md): the target is none; lower these as models improve.
ORDINARY_ESCALATED_AT_MOST = 1  # heads 1.2.0: 1 (high); 1.1.0: 2, one of them imminent
ORDINARY_IMMINENT_AT_MOST = 0


@pytest.mark.model
def test_ordinary_short_posts_are_rarely_escalated() -> None:
    """Thanks, greetings and sign-offs are not goodbyes: an emergency flag on one withholds an ordinary post."""
    ordinary_file = Path(__file__).parents[1] / "models" / "eval" / "ordinary_short_posts.jsonl"
    texts = [json.loads(line)["text"] for line in ordinary_file.read_text(encoding="utf-8").splitlines() if line]
    pipeline = build_pipeline(Settings(pipeline=PipelineSettings(classifier_timeout_s=None)))
    decisions = pipeline.moderate_batch([Post(text=text) for text in texts])
    escalated = [d for d in decisions if d.action is Action.escalate]
    imminent = [d for d in escalated if d.distress_level is DistressLevel.imminent]
    assert len(escalated) <= ORDINARY_ESCALATED_AT_MOST and len(imminent) <= ORDINARY_IMMINENT_AT_MOST
