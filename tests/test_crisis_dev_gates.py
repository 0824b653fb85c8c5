"""The crisis dev gates count what they say, through the real rules-and-grammar pipeline on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

from moderation_service.training.risk_heads import HeadsConfig, evaluate_levels
from tests.equivalence_corpus import rules_only_pipeline

_POSTS = [
    ("I've saved up all my tablets and I'm taking them tonight", "imminent"),
    ("i want to die, i can't do this any more", "high"),
    ("Off to bed now, night all, speak tomorrow", "none"),
    ("Five years ago I saved up my tablets to take them that night. I'm so glad I'm still here", "none"),
    # labelled wrongly on purpose: the gate counts the decision against the label
    ("got my pills saved up and tonight's the night", "none"),
]


def _corpus(tmp_path: Path) -> HeadsConfig:
    corpus, datasets = tmp_path / "crisis", tmp_path / "datasets"
    corpus.mkdir()
    # Each post in its own file, so the 20 % dev share takes it (a file of one post puts it on dev).
    for i, (text, level) in enumerate(_POSTS):
        dimensions = [] if level == "none" else ["passive_ideation"]
        (corpus / f"p{i}.jsonl").write_text(json.dumps({"text": text, "level": level, "dimensions": dimensions, "kind": "k"}) + "\n")
    for name, header in (("medical_qa_forums", "id,text"), ("goemotions", "id,text")):
        (datasets / name).mkdir(parents=True)
        (datasets / name / "train.csv").write_text(f"{header}\n")
    return HeadsConfig(corpus, datasets, tmp_path, tmp_path, tmp_path, dev_share=1.0)


def test_the_gates_count_misses_and_false_emergencies_apart(tmp_path: Path) -> None:
    gates = evaluate_levels(_corpus(tmp_path), rules_only_pipeline())["gates"]
    assert isinstance(gates, dict)
    assert gates["imminent_recall"]["total"] == 1 and gates["false_emergencies"]["total"] == 3
    assert gates["imminent_recall"]["hits"] == 1  # the plan with the time is an emergency
    assert gates["risk_escalation_recall"]["hits"] == 2  # and the wish to die is escalated
    # only the mislabelled post: the sign-off and the recovery story are neither emergencies nor escalated
    assert gates["false_emergencies"]["hits"] == 1 and gates["false_escalations"]["hits"] == 1
