"""Abuse heads on the embedded encoder's pooled vector: ``commercial``, ``insult`` and ``identity_hate``.

``insult`` is abuse aimed at a person (a member, a reply, an @mention), ``identity_hate`` is hate
against a group (disability and illness as much as any other), ``commercial`` is selling, promotion
and drug trading. They are scores like the encoder's own categories: the rulebook's ``thresholds``
turn them into holds, and the defaults there are the hold points chosen on dev data by
``moderation-service train-abuse-heads`` (recorded in the file with the dev PR curve, so ``rules
check`` can say what a threshold would hold before it goes live).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from moderation_service.core.classifiers.pooled_heads import PooledHeads, load_heads
from moderation_service.errors import ConfigError

__all__ = ["ABUSE_LABELS", "FILE_NAME", "CurvePoint", "dev_curves", "load_abuse_heads", "point_at"]

FILE_NAME = "abuse_heads.json"
ABUSE_LABELS = ("commercial", "insult", "identity_hate")


@dataclass(frozen=True)
class CurvePoint:
    """What holding at ``threshold`` did on the dev split, and would do at the assumed deployment prevalence."""

    threshold: float
    precision: float | None  # on the dev split (None: nothing reached the threshold)
    recall: float
    dev_hold_rate: float  # share of all dev posts at or above the threshold
    false_positive_rate: float
    prevalence: float  # the assumed share of such posts on a live forum
    deployed_precision: float | None
    deployed_hold_rate: float  # expected share of live posts held by this head alone
    health_hold_rate: float | None = None  # share of the dev split's ordinary health questions held


def load_abuse_heads(model_dir: Path) -> PooledHeads | None:
    """The abuse heads beside the encoder's weights, or None when none were trained."""
    return load_heads(model_dir / FILE_NAME)


def dev_curves(model_dir: Path) -> dict[str, list[CurvePoint]]:
    """Each head's dev curve from its file (empty when no abuse heads were trained)."""
    path = model_dir / FILE_NAME
    if not path.exists():
        return {}
    try:
        curves = json.loads(path.read_text(encoding="utf-8"))["dev_curves"]
        return {label: [CurvePoint(**point) for point in points] for label, points in curves.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the dev curves in {path}: {exc.__class__.__name__}") from exc


def point_at(curve: list[CurvePoint], threshold: float) -> CurvePoint | None:
    """The curve's point for a threshold: the highest stored one not above it (curves step by 0.01; holds at most that)."""
    below = [point for point in curve if point.threshold <= threshold + 1e-9]
    return below[-1] if below else None
