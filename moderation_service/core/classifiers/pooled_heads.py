"""Small heads on the embedded encoder's mean-pooled sentence vector: the one place for "heads on the pooled vector".

The crisis risk heads (``risk_heads.json``) and the abuse heads (``abuse_heads.json``) are both sets of
these: an optional shared hidden layer (GELU, tanh form, so numpy computes exactly what torch trained),
one logit per label, Platt calibration per label, and thresholds chosen on dev data. They read the
same forward pass as the encoder's own categories (no extra model run); a post's head logit is its
maximum over windows, so a sentence buried in a long post counts where it is.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from moderation_service.errors import ConfigError

__all__ = ["PooledHeads", "gelu", "load_heads"]


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its tanh form, the one training uses (``torch.nn.GELU(approximate="tanh")``)."""
    out: np.ndarray = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    return out


@dataclass(frozen=True)
class PooledHeads:
    version: str
    labels: tuple[str, ...]
    weights: np.ndarray  # (hidden or dim, labels)
    bias: np.ndarray  # (labels,)
    calibration_a: np.ndarray
    calibration_b: np.ndarray
    operating_points: dict[str, float]  # counts on its own (dev precision >= the target)
    supporting_points: dict[str, float]  # counts only beside another signal (a lower bar)
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

    def scores(self, pooled: np.ndarray) -> dict[str, float]:
        """One post's calibrated scores from its (windows, dim) pooled vectors: maximum over windows."""
        probs = self.probabilities(self.window_logits(pooled).max(axis=0))
        return {label: float(p) for label, p in zip(self.labels, probs, strict=True)}

    def half_hidden(self) -> PooledHeads:
        """The same heads with the hidden layer rounded to float16, as ``to_json(half=True)`` stores it."""
        if self.hidden_weights is None or self.hidden_bias is None:
            return self
        rounded = [a.astype(np.float16).astype(np.float32) for a in (self.hidden_weights, self.hidden_bias)]
        return replace(self, hidden_weights=rounded[0], hidden_bias=rounded[1])

    def to_json(self, extra: dict[str, Any], half: bool = False) -> str:
        """``half``: the hidden layer as float16 (half the bytes; compute scores with ``half_hidden()`` to match)."""
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
            payload["hidden"] = {"weights": _packed(self.hidden_weights, half), "bias": _packed(self.hidden_bias, half)}
        return json.dumps(payload, indent=1, sort_keys=True) + "\n"


def _packed(array: np.ndarray, half: bool = False) -> dict[str, Any]:
    """An array as base64 (a 384x256 hidden layer is 98k numbers: a JSON list would be 2.6 MB, this 0.4 MB, or 0.2 MB as float16)."""
    dtype, key = ("<f2", "float16_base64") if half else ("<f4", "float32_base64")
    data = np.ascontiguousarray(array, dtype=dtype)
    return {"shape": list(data.shape), key: base64.b64encode(data.tobytes()).decode("ascii")}


def _unpacked(packed: dict[str, Any]) -> np.ndarray:
    dtype, key = ("<f2", "float16_base64") if "float16_base64" in packed else ("<f4", "float32_base64")
    raw = base64.b64decode(packed[key], validate=True)
    return np.frombuffer(raw, dtype=dtype).reshape(packed["shape"]).astype(np.float32)


def load_heads(path: Path) -> PooledHeads | None:
    """The heads in ``path``, or None when none were trained (the file is absent)."""
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        labels = tuple(meta["labels"])
        hidden = meta.get("hidden")
        return PooledHeads(
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
