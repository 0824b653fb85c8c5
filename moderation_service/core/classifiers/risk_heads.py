"""Linear heads for the crisis risk dimensions, read off the embedded model's pooled sentence vector.

Labels are ``risk.<dimension>`` for the C-SSRS dimensions and ``level.any`` / ``level.imminent`` for
the crisis level itself. They share the encoder's one forward pass (no extra model run), are trained by
``moderation-service train-risk-heads`` on the project's licence-clean crisis corpus, and ship as
one small JSON file beside the encoder's weights. Each head has a calibrated probability and an
operating point chosen on dev data for a stated precision (see models/README.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moderation_service.errors import ConfigError

__all__ = ["RiskHeads", "load_risk_heads"]

FILE_NAME = "risk_heads.json"


@dataclass(frozen=True)
class RiskHeads:
    version: str
    labels: tuple[str, ...]  # "risk.<dimension>"
    weights: np.ndarray  # (dim, labels)
    bias: np.ndarray  # (labels,)
    calibration_a: np.ndarray
    calibration_b: np.ndarray
    operating_points: dict[str, float]  # counts on its own (dev precision >= the target)
    supporting_points: dict[str, float]  # counts only beside another risk signal (a lower bar)

    def window_logits(self, pooled: np.ndarray) -> np.ndarray:
        """(windows, dim) -> (windows, labels) raw logits."""
        out: np.ndarray = pooled @ self.weights + self.bias
        return out

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(logits * self.calibration_a + self.calibration_b)))
        return out

    def to_json(self, extra: dict[str, Any]) -> str:
        payload = {
            "version": self.version,
            "labels": list(self.labels),
            "weights": np.round(self.weights, 6).tolist(),
            "bias": np.round(self.bias, 6).tolist(),
            "calibration": {
                label: {"a": float(a), "b": float(b)}
                for label, a, b in zip(self.labels, self.calibration_a, self.calibration_b, strict=True)
            },
            "operating_points": self.operating_points,
            "supporting_points": self.supporting_points,
            **extra,
        }
        return json.dumps(payload, indent=1, sort_keys=True) + "\n"


def load_risk_heads(model_dir: Path) -> RiskHeads | None:
    """The heads beside the encoder's weights, or None when none were trained."""
    path = model_dir / FILE_NAME
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        labels = tuple(meta["labels"])
        return RiskHeads(
            version=str(meta["version"]),
            labels=labels,
            weights=np.array(meta["weights"], dtype=np.float32),
            bias=np.array(meta["bias"], dtype=np.float32),
            calibration_a=np.array([meta["calibration"][label]["a"] for label in labels], dtype=np.float32),
            calibration_b=np.array([meta["calibration"][label]["b"] for label in labels], dtype=np.float32),
            operating_points={label: float(meta["operating_points"][label]) for label in labels},
            supporting_points={label: float(meta.get("supporting_points", meta["operating_points"])[label]) for label in labels},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}") from exc
