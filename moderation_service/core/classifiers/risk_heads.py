"""Small heads for the crisis risk dimensions, read off the embedded model's pooled sentence vector.

Labels are ``risk.<dimension>`` for the C-SSRS dimensions and ``level.any`` / ``level.imminent`` for
the crisis level itself. They share the encoder's one forward pass (no extra model run), are trained by
``moderation-service train-risk-heads`` on the project's licence-clean crisis corpus, and ship as
one small JSON file beside the encoder's weights. Each head has a calibrated probability and an
operating point chosen on dev data for a stated precision (see models/README.md).

Since heads 1.1.0 the heads share one hidden layer (GELU, tanh form, so numpy computes exactly what
torch trained): on the dev split it lifted mean PR AUC from 0.67 (linear) to 0.73. Files without a
hidden layer (1.0.0) still load as linear heads.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moderation_service.errors import ConfigError

__all__ = ["RiskHeads", "load_risk_heads"]

FILE_NAME = "risk_heads.json"


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its tanh form, the one training uses (``torch.nn.GELU(approximate="tanh")``)."""
    out: np.ndarray = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    return out


@dataclass(frozen=True)
class RiskHeads:
    version: str
    labels: tuple[str, ...]  # "risk.<dimension>"
    weights: np.ndarray  # (hidden or dim, labels)
    bias: np.ndarray  # (labels,)
    calibration_a: np.ndarray
    calibration_b: np.ndarray
    operating_points: dict[str, float]  # counts on its own (dev precision >= the target)
    supporting_points: dict[str, float]  # counts only beside another risk signal (a lower bar)
    hidden_weights: np.ndarray | None = None  # (dim, hidden); None: linear heads
    hidden_bias: np.ndarray | None = None  # (hidden,)

    def window_logits(self, pooled: np.ndarray) -> np.ndarray:
        """(windows, dim) -> (windows, labels) raw logits."""
        features = pooled if self.hidden_weights is None else gelu(pooled @ self.hidden_weights + self.hidden_bias)
        out: np.ndarray = features @ self.weights + self.bias
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
        if self.hidden_weights is not None and self.hidden_bias is not None:
            payload["hidden"] = {"weights": _packed(self.hidden_weights), "bias": _packed(self.hidden_bias)}
        return json.dumps(payload, indent=1, sort_keys=True) + "\n"


def _packed(array: np.ndarray) -> dict[str, Any]:
    """A float32 array as base64 (the hidden layer is 98k numbers: a JSON list would be 2.6 MB, this 0.4 MB)."""
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "float32_base64": base64.b64encode(data.tobytes()).decode("ascii")}


def _unpacked(packed: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(packed["float32_base64"], validate=True)
    return np.frombuffer(raw, dtype="<f4").reshape(packed["shape"]).astype(np.float32)


def load_risk_heads(model_dir: Path) -> RiskHeads | None:
    """The heads beside the encoder's weights, or None when none were trained."""
    path = model_dir / FILE_NAME
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        labels = tuple(meta["labels"])
        hidden = meta.get("hidden")
        return RiskHeads(
            version=str(meta["version"]),
            labels=labels,
            weights=np.array(meta["weights"], dtype=np.float32),
            bias=np.array(meta["bias"], dtype=np.float32),
            calibration_a=np.array([meta["calibration"][label]["a"] for label in labels], dtype=np.float32),
            calibration_b=np.array([meta["calibration"][label]["b"] for label in labels], dtype=np.float32),
            operating_points={label: float(meta["operating_points"][label]) for label in labels},
            supporting_points={label: float(meta.get("supporting_points", meta["operating_points"])[label]) for label in labels},
            hidden_weights=None if hidden is None else _unpacked(hidden["weights"]),
            hidden_bias=None if hidden is None else _unpacked(hidden["bias"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}") from exc
