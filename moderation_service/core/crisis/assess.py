"""Combine risk dimensions into one distress level, as docs/crisis-risk.md sets out.

Ideation (or despair) with means, a plan, a time or preparation is imminent, and so are two of plan,
time and means-or-preparation together, two separate preparatory acts (a note and a will), and an
attempt in progress. Ideation, self-harm, means, a plan, a time or preparation alone, or worry for
someone else, is high; hopelessness alone is low. Nothing here looks at words: only at which
dimensions were found, and where.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from moderation_service.core.crisis.dimensions import IDEATION, RISK_CONTEXT, Dimension, RiskSignal
from moderation_service.core.decision import DISTRESS_ORDER, DistressLevel

__all__ = ["RiskAssessment", "assess", "level_of"]

_HIGH_ALONE = frozenset(
    {
        Dimension.passive_ideation,
        Dimension.active_ideation,
        Dimension.intent,
        Dimension.self_harm,
        Dimension.concern_other,
        Dimension.means,
        Dimension.plan,
        Dimension.preparation,
        Dimension.timing,  # the grammars' timing patterns name a death ("last night alive"), not just a time
    }
)


# Two of these together say the author means to act, ideation named or not; means and preparation are
# one group because one phrase ("tablets saved up") is often both.
_INTENT_GROUPS = (frozenset({Dimension.plan}), frozenset({Dimension.timing}), frozenset({Dimension.means, Dimension.preparation}))


@dataclass(frozen=True)
class RiskAssessment:
    level: DistressLevel
    dimensions: frozenset[Dimension]
    signals: tuple[RiskSignal, ...]
    model_level: DistressLevel = DistressLevel.none  # what the level heads said on their own
    model_score: float | None = None


def level_of(dimensions: Iterable[Dimension]) -> DistressLevel:
    """The level a set of dimensions amounts to (monotone: more dimensions never lower it)."""
    found = frozenset(dimensions)
    if Dimension.attempt in found:
        return DistressLevel.imminent
    if found & IDEATION and found & RISK_CONTEXT:
        return DistressLevel.imminent
    if sum(bool(found & group) for group in _INTENT_GROUPS) >= 2:  # a plan with a time, means with a time...
        return DistressLevel.imminent
    if Dimension.concern_other in found and found & (RISK_CONTEXT - {Dimension.preparation}):
        return DistressLevel.imminent
    if found & _HIGH_ALONE:
        return DistressLevel.high
    if Dimension.hopelessness in found:
        return DistressLevel.low
    return DistressLevel.none


def _farewell(signals: tuple[RiskSignal, ...]) -> bool:
    """Two separate preparatory acts (a note and a will, a last post and thanks for everything) read as a farewell."""
    spans = {(s.field, s.start, s.end) for s in signals if s.dimension is Dimension.preparation and s.source == "grammar"}
    ordered = sorted(spans, key=lambda span: (str(span[0]), span[1] or 0))
    separate = [a for a, b in zip(ordered, ordered[1:], strict=False) if a[0] != b[0] or (a[2] or 0) <= (b[1] or 0)]
    return len(separate) + (1 if ordered else 0) >= 2


def assess(
    signals: Iterable[RiskSignal], model_level: DistressLevel = DistressLevel.none, model_score: float | None = None
) -> RiskAssessment:
    """The level of the dimensions found, raised to what the level heads read (never lowered by them)."""
    kept = tuple(signals)
    dimensions = frozenset(s.dimension for s in kept)
    level = level_of(dimensions)
    if level is not DistressLevel.imminent and _farewell(kept):
        level = DistressLevel.imminent
    level = max(level, model_level, key=DISTRESS_ORDER.__getitem__)
    return RiskAssessment(level=level, dimensions=dimensions, signals=kept, model_level=model_level, model_score=model_score)
