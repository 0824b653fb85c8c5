"""Platt scaling: turn raw logits into probabilities where 0.5 really means 50 %."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

__all__ = ["expected_calibration_error", "fit_platt"]


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Fit p = sigmoid(a * logit + b) by maximum likelihood; a stays positive to keep the ranking."""
    if len(labels) == 0 or labels.min() == labels.max():
        return {"a": 1.0, "b": 0.0}

    def nll(params: np.ndarray) -> float:
        z = params[0] * logits + params[1]
        return float(np.mean(np.logaddexp(0.0, z) - labels * z))

    result = minimize(nll, x0=np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(1e-3, 20.0), (-20.0, 20.0)])
    return {"a": float(result.x[0]), "b": float(result.x[1])}


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over equal-width bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (probs >= low) & ((probs < high) | (high == 1.0))
        if in_bin.any():
            total += in_bin.mean() * abs(probs[in_bin].mean() - labels[in_bin].mean())
    return float(total)
