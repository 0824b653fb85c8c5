"""Evaluate the shipped classifier on the shared dev sets: metrics as JSON, plots as PNG.

``evaluate_csv`` scores one labelled file for one category; ``evaluate_suite`` runs every dev set
(including the evaluation-only sets that are never trained on) and the policy-level checks: how
often the default rulebook holds or escalates everyday health questions, and false positives on
identity-term sentences. Moderators read the plots to choose thresholds.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moderation_service.core.classifiers.base import Classifier
from moderation_service.core.decision import Action
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.training.datasets import Example, load_training_data, read_rows
from moderation_service.training.metrics import binary_metrics
from moderation_service.training.plots import save_plots

__all__ = ["Task", "evaluate_csv", "evaluate_suite", "shipped_thresholds", "suite_markdown"]

MAX_CHARS = 20_000


@dataclass(frozen=True)
class Task:
    name: str
    category: str
    texts: list[str]
    labels: np.ndarray
    note: str = ""


def shipped_thresholds(pipeline: Pipeline) -> dict[str, float]:
    """Per category, the lowest score at which the default rulebook does anything but allow quietly."""
    book = pipeline.rulebooks.get(None)
    out = {}
    for label, threshold in book.thresholds.items():
        acting = [b.min for b in threshold.bands if b.action is not Action.allow or b.signpost]
        out[label] = min(acting) if acting else 1.0
    return out


def _score(classifier: Classifier, texts: Sequence[str], category: str) -> np.ndarray:
    scores: list[float] = []
    for start in range(0, len(texts), 64):
        batch = [t[:MAX_CHARS] for t in texts[start : start + 64]]
        scores += [s[category] for s in classifier.predict(batch)]
    return np.array(scores, dtype=np.float64)


def _evaluate_task(task: Task, classifier: Classifier, thresholds: dict[str, float], plots: Path) -> dict[str, Any]:
    probs = _score(classifier, task.texts, task.category)
    shipped = thresholds.get(task.category, 0.5)
    result: dict[str, Any] = {
        "category": task.category,
        "note": task.note,
        "at_0.5": binary_metrics(task.labels, probs, 0.5),
        "at_shipped_threshold": {"threshold": shipped, **binary_metrics(task.labels, probs, shipped)},
    }
    save_plots(task.name, task.labels, probs, shipped, plots)
    return result


def evaluate_csv(
    path: Path, category: str, text_col: str, label_col: str, classifier: Classifier, pipeline: Pipeline, out_dir: Path
) -> dict[str, Any]:
    """Metrics for one labelled CSV (labels 0/1, or any value != 0/'0'/'false' counted as positive)."""
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            texts.append(row[text_col])
            labels.append(0 if str(row[label_col]).strip().lower() in ("0", "false", "no", "not_bad", "") else 1)
    task = Task(path.stem, category, texts, np.array(labels))
    result = {path.stem: _evaluate_task(task, classifier, shipped_thresholds(pipeline), out_dir)}
    _write(out_dir, result)
    return result


def _csv_task(name: str, category: str, path: Path, label: Callable[[dict[str, str]], int]) -> Task:
    """A whole evaluation-only file (never trained on) as one task."""
    rows = list(read_rows(path))
    return Task(name, category, [r["text"] for r in rows], np.array([label(r) for r in rows]), "evaluation only")


def _from_dev(dev: list[Example], source: str, category: str) -> Task:
    rows = [e for e in dev if e.source == source and category in e.labels]
    return Task(f"{source}-{category}", category, [e.text for e in rows], np.array([e.labels[category] for e in rows]), "dev split")


def _suite_tasks(root: Path, handwritten: Path) -> list[Task]:
    dev = load_training_data(root, handwritten).dev
    tasks = [
        _from_dev(dev, "tweeteval_offensive", "toxicity"),
        _from_dev(dev, "tweeteval_hate", "identity_attack"),
        _from_dev(dev, "davidson_hate_offensive", "toxicity"),
        _from_dev(dev, "stormfront_hate", "identity_attack"),
        _from_dev(dev, "goemotions", "distress"),
        _from_dev(dev, "ethos_hate", "threat"),
    ]
    risky = {"Ideation", "Behavior", "Attempt"}
    tasks += [
        _csv_task("dreaddit-distress", "distress", root / "dreaddit" / "train.csv", lambda r: int(r["label"])),
        _csv_task("sdcnl-suicide_risk", "suicide_risk", root / "sdcnl_suicide_vs_depression" / "train.csv", lambda r: int(r["label"])),
        _csv_task("cssrs-suicide_risk", "suicide_risk", root / "cssrs_reddit_500" / "train.csv", lambda r: int(r["label"] in risky)),
        # The crisis level head (risk of suicide or self-harm, high or imminent) on the same evaluation-only sets.
        _csv_task("sdcnl-level.any", "level.any", root / "sdcnl_suicide_vs_depression" / "train.csv", lambda r: int(r["label"])),
        _csv_task("cssrs-level.any", "level.any", root / "cssrs_reddit_500" / "train.csv", lambda r: int(r["label"] in risky)),
    ]
    for variant in ("original", "identity_fuzzed"):
        path = root / "wiki_toxicity_identity" / f"{variant}.csv"
        tasks.append(_csv_task(f"wiki_{variant}-toxicity", "toxicity", path, lambda r: int(r["toxic"])))
    return tasks


def _policy_rates(pipeline: Pipeline, texts: list[str]) -> dict[str, float]:
    held = escalated = signposted = 0
    for start in range(0, len(texts), 32):
        posts = [Post(text=t[:MAX_CHARS]) for t in texts[start : start + 32] if t.strip()]
        for decision in pipeline.moderate_batch(posts):
            held += decision.action is Action.hold
            escalated += decision.action is Action.escalate
            signposted += decision.signposting is not None
    n = max(1, len(texts))
    return {"n": n, "held": held / n, "escalated": escalated / n, "held_or_escalated": (held + escalated) / n, "signposted": signposted / n}


def evaluate_suite(
    root: Path, handwritten: Path, classifier: Classifier, pipeline: Pipeline, out_dir: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Every dev set, plus policy-level false-positive checks; writes suite.json and PNGs."""
    thresholds = shipped_thresholds(pipeline)
    report: dict[str, Any] = {"model": f"{classifier.name}@{classifier.version}", "shipped_thresholds": thresholds, "tasks": {}}
    for task in _suite_tasks(root, handwritten):
        progress(task.name)
        report["tasks"][task.name] = _evaluate_task(task, classifier, thresholds, out_dir)
    wiki = report["tasks"]
    report["identity_swap_auc_loss"] = round(
        wiki["wiki_original-toxicity"]["at_0.5"]["roc_auc"] - wiki["wiki_identity_fuzzed-toxicity"]["at_0.5"]["roc_auc"], 4
    )
    progress("bias_madlibs")
    madlibs = [r["text"] for r in read_rows(root / "bias_madlibs_identity" / "train.csv") if r["label"] == "NOT_BAD"]
    sample = random.Random(0).sample(madlibs, min(5000, len(madlibs)))
    fp = {}
    # The abuse heads hold on identity terms too, where loaded: the same sample and the same bar.
    for category in ("toxicity", "identity_attack", *(label for label in ("insult", "identity_hate") if label in classifier.labels)):
        scores = _score(classifier, sample, category)
        fp[category] = round(float((scores >= thresholds.get(category, 0.5)).mean()), 4)
    report["bias_madlibs_not_bad_fpr_at_shipped"] = {"n": len(sample), **fp}
    progress("medical_qa_forums (policy)")
    medical = [e.text for e in load_training_data(root, handwritten).dev if e.source == "medical_qa_forums"]
    report["medical_qa_dev_policy"] = _policy_rates(pipeline, medical)
    progress("counsel_chat (policy)")
    counsel = [e.text for e in load_training_data(root, handwritten).dev if e.source == "counsel_chat"]
    report["counsel_chat_dev_policy"] = _policy_rates(pipeline, counsel)
    _write(out_dir, report, "suite.json")
    (out_dir / "suite.md").write_text(suite_markdown(report))
    return report


def suite_markdown(report: dict[str, Any]) -> str:
    """The suite as the tables the model card shows."""
    lines = [
        f"Model `{report['model']}`; shipped thresholds (lowest acting band): {report['shipped_thresholds']}",
        "",
        "| dev set | category | n | ROC AUC | PR AUC | macro-F1 @0.5 | F1 @0.5 | best macro-F1 (threshold) | ECE | macro-F1 @shipped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, task in report["tasks"].items():
        a, s = task["at_0.5"], task["at_shipped_threshold"]
        best = f"{a.get('best_macro_f1', '-')} ({a.get('best_threshold', '-')})"
        lines.append(
            f"| {name} ({task['note']}) | {task['category']} | {int(a['n'])} | {a.get('roc_auc', '-')} | {a.get('pr_auc', '-')} | "
            f"{a['macro_f1']} | {a['f1']} | {best} | {a['ece']} | {s['macro_f1']} |"
        )
    medical, counsel = report["medical_qa_dev_policy"], report["counsel_chat_dev_policy"]
    madlibs = report["bias_madlibs_not_bad_fpr_at_shipped"]
    lines += [
        "",
        f"- Identity-term swap (wiki_toxicity_identity original minus fuzzed ROC AUC): {report['identity_swap_auc_loss']}",
        f"- bias_madlibs NOT_BAD sentences flagged at the shipped thresholds (n={madlibs['n']}): "
        + ", ".join(f"{category} {share:.2%}" for category, share in madlibs.items() if category != "n"),
        f"- medical_qa_forums dev (n={medical['n']}), default rulebook + model: held {medical['held']:.2%}, "
        f"escalated {medical['escalated']:.2%}, signposted {medical['signposted']:.2%}",
        f"- counsel_chat dev (n={counsel['n']}): held {counsel['held']:.2%}, escalated {counsel['escalated']:.2%}, "
        f"signposted {counsel['signposted']:.2%}",
    ]
    return "\n".join(lines) + "\n"


def _write(out_dir: Path, report: dict[str, Any], name: str = "eval.json") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / name).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
