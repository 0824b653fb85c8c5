"""The fast stages decide exactly as before: every stored post gets the recorded decision and crisis finding.

The reference was recorded by ``tests/equivalence_corpus.py`` from the code before the stage-CPU work
(issue #14); see that module for the posts and how to regenerate. Rules-only (no model), so it is quick.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from moderation_service.core.pipeline import Pipeline, Post
from tests.equivalence_corpus import GOLDEN, outcome, rules_fingerprint, rules_only_pipeline


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    pipe = rules_only_pipeline()
    yield pipe
    pipe.close()


def _recorded() -> tuple[str, list[dict[str, Any]]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as handle:
        header, *records = (json.loads(line) for line in handle)
    return header["rules"], records


def test_every_recorded_post_gets_the_same_decision_and_finding(pipeline: Pipeline) -> None:
    rules, records = _recorded()
    assert rules == rules_fingerprint(), (
        "rules/ changed since the reference was recorded: regenerate it with `python -m tests.equivalence_corpus` "
        "from code whose decisions you trust (not from a change under test)"
    )
    assert len(records) > 5000 and {r["decision"]["language"] for r in records} >= {"en", "es", "fr", "de", "it", "pt", "pl", "cy"}
    differences = []
    for record in records:
        post = Post(text=record["post"]["text"], title=record["post"]["title"], locale=record["post"]["locale"])
        expected = {key: record[key] for key in ("decision", "language", "signals")}
        got = outcome(pipeline, post)
        if got != expected:
            differences.append((record["post"], {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}))
    assert not differences, f"{len(differences)} posts decided differently; first: {differences[:3]}"
