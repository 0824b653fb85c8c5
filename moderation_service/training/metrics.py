"""Binary classification metrics shared by training reports and ``moderation-service eval``."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from moderation_service.training.calibration import expected_calibration_error

__all__ = ["binary_metrics"]


def binary_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """ROC/PR AUC, macro-F1 and positive-class F1 at ``threshold``, ECE, and the best-F1 threshold."""
    labels = labels.astype(int)
    predicted = (probs >= threshold).astype(int)
    out: dict[str, float] = {
        "n": float(len(labels)),
        "positives": float(labels.sum()),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "positive_rate": float(predicted.mean()) if len(predicted) else 0.0,
        "ece": expected_calibration_error(labels, probs),
    }
    if 0 < labels.sum() < len(labels):
        out["roc_auc"] = float(roc_auc_score(labels, probs))
        out["pr_auc"] = float(average_precision_score(labels, probs))
        grid = np.linspace(0.05, 0.95, 19)
        scores = [f1_score(labels, (probs >= t).astype(int), average="macro", zero_division=0) for t in grid]
        out["best_macro_f1"] = float(max(scores))
        out["best_threshold"] = float(grid[int(np.argmax(scores))])
    return {k: round(v, 4) for k, v in out.items()}
