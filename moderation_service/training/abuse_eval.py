"""What the abuse heads do: their dev curves at the rulebook's thresholds, and what they add beside the rules.

Two measures (``moderation-service eval --abuse-dev``):

- each head on its own dev split (the trainer's fixed hash split): ROC/PR AUC, and the PR-curve point of
  the rulebook's hold threshold, on dev and at the assumed deployment prevalence, with a PNG per head;
- the whole decision on the abuse dev corpus (``models/training_data/abuse``, never trained on), per
  ``kind``: hold recall and false holds with the heads holding at the rulebook's thresholds ("after",
  whether its bands hold or only report) and without them
  ("before", what the rules, crisis grammars and encoder categories hold alone), and the same for the
  held-out health questions; plus the share of bias_madlibs identity sentences each head would hold.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from moderation_service.core.author import AuthorFacts
from moderation_service.core.classifiers.abuse_heads import ABUSE_LABELS, point_at
from moderation_service.core.classifiers.embedded import EmbeddedClassifier
from moderation_service.core.decision import Action, Decision, ReasonSource
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.training.abuse_heads import PRECISION_TARGET, PREVALENCE, build_abuse_split, dev_curve, post_probabilities
from moderation_service.training.datasets import read_rows
from moderation_service.training.metrics import binary_metrics
from moderation_service.training.plots import save_plots
from moderation_service.training.risk_heads import HeadsConfig, embed

__all__ = ["corpus_holds", "evaluate_abuse", "head_curves", "held", "identity_terms", "policy_holds"]

MAX_CHARS = 20_000  # the service's own limit on a post


def held(decision: Decision, with_heads: bool = True) -> bool:
    """Held or escalated by any reason but the heads'; ``with_heads``: or reached a head's threshold, as if it held
    there (a head's reason exists only at or above its band, whatever the band's action)."""
    for reason in decision.reasons:
        head = reason.source is ReasonSource.model and reason.id in ABUSE_LABELS
        if (head and with_heads) or (not head and reason.action is not Action.allow):
            return True
    return False


def _head_scores(cfg: HeadsConfig, classifier: EmbeddedClassifier, texts: list[str], progress: Callable[[str], None]) -> np.ndarray:
    """(texts, heads) scores as the service computes them, from the trainers' embedding cache (re-runs take seconds)."""
    heads = classifier.abuse_heads
    if heads is None:
        raise ValueError(f"no abuse heads in {cfg.model_dir}: train them (moderation-service train-abuse-heads)")
    cache = cfg.cache_dir / "risk-head-embeddings" / classifier.version.split("+")[0]  # the encoder's own version
    return post_probabilities(heads, embed(classifier, texts, cache, progress))


def identity_terms(
    cfg: HeadsConfig, classifier: EmbeddedClassifier, thresholds: dict[str, float], progress: Callable[[str], None]
) -> dict[str, Any]:
    """Share of bias_madlibs NOT_BAD sentences ("I am a gay person", evaluation only) each head would hold (issue bar: 5 %)."""
    madlibs = [r["text"] for r in read_rows(cfg.datasets_dir / "bias_madlibs_identity" / "train.csv") if r["label"] == "NOT_BAD"]
    sample = random.Random(0).sample(madlibs, min(5000, len(madlibs)))  # the sample ``eval --suite`` uses
    probs = _head_scores(cfg, classifier, sample, progress)
    out: dict[str, Any] = {"n": len(sample)}
    for col, label in enumerate(ABUSE_LABELS):
        out[label] = round(float((probs[:, col] >= thresholds.get(label, 1.0)).mean()), 4)
    return out


def head_curves(
    cfg: HeadsConfig, classifier: EmbeddedClassifier, rule_thresholds: dict[str, float], out_dir: Path, progress: Callable[[str], None]
) -> tuple[dict[str, Any], list[str]]:
    """Each head on its dev split, with the PR-curve point of the rulebook's hold threshold (and a PNG); and the dev health questions."""
    dev = build_abuse_split(cfg).dev
    probs = _head_scores(cfg, classifier, [p.text for p in dev], progress)
    heads = classifier.abuse_heads
    assert heads is not None  # checked by _head_scores
    health = np.array([p.source == "medical_qa_forums" for p in dev])
    out: dict[str, Any] = {}
    for col, label in enumerate(heads.labels):
        labels = np.array([float(label in p.labels) for p in dev])
        threshold = rule_thresholds.get(label, heads.operating_points[label])
        point = point_at(dev_curve(labels, probs[:, col], PREVALENCE[label], health), threshold)
        assert point is not None  # the curve starts at 0.01
        metrics = binary_metrics(labels, probs[:, col], threshold)
        out[label] = {
            "rulebook_threshold": threshold,
            "trained_hold_point": heads.operating_points[label],
            "precision_target": PRECISION_TARGET[label],
            "point": asdict(point),
            "health_questions_held": round(float((probs[health, col] >= threshold).mean()), 4) if health.any() else None,
            "roc_auc": metrics.get("roc_auc"),
            "pr_auc": metrics.get("pr_auc"),
            "dev_posts": len(dev),
            "dev_positives": int(labels.sum()),
        }
        save_plots(f"abuse-head-{label}", labels, probs[:, col], threshold, out_dir, mark=(point.recall, point.precision))
    return out, [p.text for p in dev if p.source == "medical_qa_forums"]


def policy_holds(pipeline: Pipeline, texts: list[str]) -> dict[str, Any]:
    """Ordinary posts through the whole pipeline: the share held before and after the heads' reasons."""
    decisions = pipeline.moderate_batch([Post(text=text[:MAX_CHARS]) for text in texts])
    before = sum(held(d, with_heads=False) for d in decisions)
    after = sum(held(d) for d in decisions)
    return {"posts": len(texts), "before": _share(before, len(texts)), "after": _share(after, len(texts))}


def corpus_holds(pipeline: Pipeline, corpus_dir: Path) -> dict[str, Any]:
    """The abuse dev corpus through the whole pipeline: per kind, holds before and after the heads' reasons."""
    rows = [
        json.loads(line) for path in sorted(corpus_dir.glob("*.jsonl")) for line in path.read_text(encoding="utf-8").splitlines() if line
    ]
    posts = [Post(text=str(row["text"]), author=AuthorFacts.model_validate(row.get("author") or {})) for row in rows]
    decisions = pipeline.moderate_batch(posts)
    kinds: dict[str, dict[str, Any]] = {}
    totals = {key: [0, 0, 0] for key in ("must_hold", "must_allow")}  # posts, held before, held after
    for row, decision in zip(rows, decisions, strict=True):
        group = "must_allow" if row["expect"] == "allow" else "must_hold"
        before, after = held(decision, with_heads=False), held(decision)
        kind = kinds.setdefault(str(row["kind"]), {"expect": group, "posts": 0, "held_before": 0, "held_after": 0})
        kind["posts"] += 1
        kind["held_before"] += before
        kind["held_after"] += after
        for i, value in enumerate((1, before, after)):
            totals[group][i] += value
    (n_hold, hb, ha), (n_allow, fb, fa) = totals["must_hold"], totals["must_allow"]
    return {
        "hold_recall": {"before": _share(hb, n_hold), "after": _share(ha, n_hold), "posts": n_hold},
        "false_holds": {"before": _share(fb, n_allow), "after": _share(fa, n_allow), "posts": n_allow},
        "kinds": dict(sorted(kinds.items(), key=lambda item: (item[1]["expect"], item[0]))),
    }


def _share(hits: int, total: int) -> dict[str, float | int]:
    return {"held": hits, "share": round(hits / total, 4) if total else 0.0}


def evaluate_abuse(
    cfg: HeadsConfig, pipeline: Pipeline, classifier: EmbeddedClassifier, corpus_dir: Path, out_dir: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Both measures, written to ``out_dir/abuse-dev.json`` (and one PNG per head) and returned."""
    book = pipeline.rulebooks.get(None)
    thresholds = {label: min(band.min for band in book.thresholds[label].bands) for label in ABUSE_LABELS if label in book.thresholds}
    heads, health = head_curves(cfg, classifier, thresholds, out_dir, progress)
    progress("bias_madlibs NOT_BAD sentences")
    madlibs = identity_terms(cfg, classifier, thresholds, progress)
    progress("abuse dev corpus")
    corpus = corpus_holds(pipeline, corpus_dir)
    progress(f"{len(health)} dev health questions through the whole pipeline")
    report = {
        "model": classifier.version,
        "rulebook": f"{book.name}@{book.version}",
        "heads": heads,
        "bias_madlibs_not_bad_held": madlibs,
        "abuse_dev_corpus": corpus,
        "dev_health_questions": policy_holds(pipeline, health),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "abuse-dev.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report
