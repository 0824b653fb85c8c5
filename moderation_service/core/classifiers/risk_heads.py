"""Small heads for the crisis risk dimensions, read off the embedded model's pooled sentence vector.

Labels are ``risk.<dimension>`` for the C-SSRS dimensions and ``level.any`` / ``level.imminent`` for
the crisis level itself. They share the encoder's one forward pass (no extra model run), are trained by
``moderation-service train-risk-heads`` on the project's licence-clean crisis corpus, and ship as
one small JSON file beside the encoder's weights. Each head has a calibrated probability and an
operating point chosen on dev data for a stated precision (see models/README.md).

Since heads 1.1.0 the heads share one hidden layer (GELU, tanh form, so numpy computes exactly what
torch trained): on the dev split it lifted mean PR AUC from 0.67 (linear) to 0.73. Files without a
hidden layer (1.0.0) still load as linear heads. The maths and the file format are shared with the
abuse heads in ``pooled_heads``.
"""

from __future__ import annotations

from pathlib import Path

from moderation_service.core.classifiers.pooled_heads import PooledHeads, gelu, load_heads

__all__ = ["FILE_NAME", "RiskHeads", "gelu", "load_risk_heads"]

FILE_NAME = "risk_heads.json"

RiskHeads = PooledHeads  # the crisis heads are pooled-vector heads like any other


def load_risk_heads(model_dir: Path) -> RiskHeads | None:
    """The heads beside the encoder's weights, or None when none were trained."""
    return load_heads(model_dir / FILE_NAME)
