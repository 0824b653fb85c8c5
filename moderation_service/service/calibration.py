"""Calibration from moderators' feedback: per model score, precision and recall at the live threshold,
the threshold that would meet a chosen precision, and the precision-recall curve.

A verdict says which categories really applied (``categories``); the decision it answers (kept with
the escalation or the submission, without text) holds the model scores. A score is "positive" when
the moderator named its rulebook category. Few verdicts give wide error: the page shows the counts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO

import numpy as np
from pydantic import BaseModel, ConfigDict

from moderation_service.service.parts import Services
from moderation_service.store import FeedbackRecord, Scope

__all__ = ["FEEDBACK_COLUMNS", "ScoreCalibration", "calibrate", "write_feedback_csv"]

FEEDBACK_COLUMNS = ["decision_id", "outcome", "final_action", "categories", "note", "key_id", "created_at"]


class ScoreCalibration(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str  # the model's score name (a rulebook threshold)
    category: str
    threshold: float  # the live threshold: the lowest band of the default rulebook
    verdicts: int
    positives: int
    precision: float | None  # None when nothing scored at or above the threshold
    recall: float | None  # None when the moderators named the category nowhere
    threshold_for_target: float | None  # the lowest threshold whose precision meets the target; None if none does
    curve: list[tuple[float, float]]  # (recall, precision) points


def write_feedback_csv(records: Iterable[FeedbackRecord], sink: IO[str]) -> int:
    """The ``feedback export`` CSV (the CLI and the console write the same columns); how many rows."""
    writer = csv.DictWriter(sink, fieldnames=FEEDBACK_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({**record.model_dump(mode="json"), "categories": ";".join(record.categories)})
        count += 1
    return count


def _rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    predicted = scores >= threshold
    tp = int((predicted & labels).sum())
    precision = tp / int(predicted.sum()) if predicted.any() else None
    recall = tp / int(labels.sum()) if labels.any() else None
    return precision, recall


def _curve(labels: np.ndarray, scores: np.ndarray, target: float) -> tuple[list[tuple[float, float]], float | None]:
    """(recall, precision) at each distinct score as threshold, highest first; and the lowest threshold meeting ``target``."""
    points, best = [], None
    for threshold in sorted(set(scores.tolist()), reverse=True):
        precision, recall = _rates(labels, scores, threshold)
        if precision is None or recall is None:
            continue
        points.append((round(recall, 4), round(precision, 4)))
        if precision >= target:
            best = float(threshold)
    return points, best


def calibrate(services: Services, scope: Scope, target_precision: float = 0.9) -> list[ScoreCalibration]:
    """One row per threshold of the default rulebook, from the scope's latest verdict on each decision."""
    store = services.require_store()
    latest: dict[str, FeedbackRecord] = {}
    for record in store.iter_feedback(scope.tenant):
        latest[record.decision_id] = record  # a later verdict on the same decision replaces the earlier one
    decisions = store.decisions_for_feedback(list(latest))
    book = services.pipeline.rulebooks.get(None)
    rows = []
    for label, rule in sorted(book.thresholds.items()):
        pairs = [(rule.category in latest[i].categories, d.scores[label]) for i, d in decisions.items() if label in d.scores]
        labels = np.array([p for p, _ in pairs], dtype=bool)
        scores = np.array([s for _, s in pairs], dtype=float)
        threshold = min(band.min for band in rule.bands)
        precision, recall = _rates(labels, scores, threshold) if pairs else (None, None)
        curve, best = _curve(labels, scores, target_precision) if pairs else ([], None)
        rows.append(
            ScoreCalibration(
                label=label,
                category=rule.category,
                threshold=threshold,
                verdicts=len(pairs),
                positives=int(labels.sum()),
                precision=precision,
                recall=recall,
                threshold_for_target=best,
                curve=curve,
            )
        )
    return rows
