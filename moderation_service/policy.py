"""Turn rule hits and classifier scores into one Decision, using the rulebook's thresholds.

The most severe action wins. Distress is support, not a violation: it signposts the author and
reaches a human queue, and never removes a post by itself (the rulebook loader refuses a support
category that would only hold). As a last guard the policy itself escalates high distress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from moderation_service.decision import (
    DISTRESS_ORDER,
    SEVERITY,
    Action,
    Decision,
    DistressLevel,
    Priority,
    Reason,
    RulebookRef,
    Span,
)
from moderation_service.rulebook.loader import Rulebook
from moderation_service.rulebook.matcher import RuleHit
from moderation_service.rulebook.schema import Band, Outcome
from moderation_service.signposting import SignpostDirectory

__all__ = ["DEGRADED", "PolicyInput", "decide"]

DEGRADED = "moderation_degraded"


@dataclass(frozen=True)
class PolicyInput:
    rulebook: Rulebook
    hits: list[RuleHit]
    scores: Mapping[str, float]
    degraded: Iterable[str]  # names of classifiers that failed or timed out
    locale: str
    fallback_action: Action
    models: tuple[str, ...] = ()


def _band(bands: Iterable[Band], score: float) -> Band | None:
    """The highest band the score reaches (bands are validated to be in increasing order)."""
    reached = [band for band in bands if score >= band.min]
    return reached[-1] if reached else None


def _collect(inp: PolicyInput) -> list[tuple[Outcome, Reason]]:
    pairs: list[tuple[Outcome, Reason]] = []
    for hit in inp.hits:
        rule = hit.rule
        span = Span(field=hit.field, start=hit.start, end=hit.end)
        reason = Reason(
            source="rule", id=rule.id, category=rule.category, action=rule.action, message=rule.message or rule.description, span=span
        )
        pairs.append((rule, reason))
    for label, threshold in inp.rulebook.thresholds.items():
        score = inp.scores.get(label)
        if score is None:
            continue
        band = _band(threshold.bands, score)
        if band is not None:
            message = band.message or f"{label} score {score:.2f} reached {band.min:.2f}"
            reason = Reason(
                source="model", id=label, category=threshold.category, action=band.action, message=message, score=round(score, 4)
            )
            pairs.append((band, reason))
    failed = sorted(set(inp.degraded))
    if failed:
        fallback = Outcome(action=inp.fallback_action, priority=Priority.normal if inp.fallback_action is Action.escalate else None)
        message = f"automatic checks unavailable ({', '.join(failed)}); held for a person to review"
        pairs.append((fallback, Reason(source="system", id=DEGRADED, category="system", action=inp.fallback_action, message=message)))
    return pairs


def decide(inp: PolicyInput, directory: SignpostDirectory) -> Decision:
    """The one Decision for a post."""
    pairs = _collect(inp)
    outcomes = [outcome for outcome, _ in pairs]
    action = max((o.action for o in outcomes), key=SEVERITY.__getitem__, default=Action.allow)
    distress = max((o.distress_level or DistressLevel.none for o in outcomes), key=DISTRESS_ORDER.__getitem__, default=DistressLevel.none)
    signpost = any(o.signpost for o in outcomes)
    priority: Priority | None = None
    if action is Action.escalate:
        urgent = any(o.priority is Priority.urgent for o in outcomes) or distress is DistressLevel.imminent
        priority = Priority.urgent if urgent else Priority.normal
    if DISTRESS_ORDER[distress] >= DISTRESS_ORDER[DistressLevel.high]:
        # Guard: high distress always reaches a person, whatever a rulebook says.
        signpost = True
        if action is not Action.escalate:
            action = Action.escalate
            priority = Priority.urgent if distress is DistressLevel.imminent else Priority.normal
    publish = all(o.publishes for o in outcomes) and action is not Action.hold
    warnings = list(dict.fromkeys(o.content_warning for o in outcomes if o.content_warning))
    severest = [o for o in outcomes if o.action is action and o.message]
    signposting = directory.lookup(inp.locale, inp.rulebook.signposting_message) if signpost else None
    author_message = severest[0].message if severest else (signposting.message if signposting else None)
    return Decision(
        action=action,
        publish=publish,
        priority=priority,
        distress_level=distress,
        scores={k: round(v, 4) for k, v in sorted(inp.scores.items())},
        reasons=tuple(reason for _, reason in pairs),
        content_warnings=tuple(warnings),
        signposting=signposting,
        author_message=author_message,
        rulebook=RulebookRef(name=inp.rulebook.name, version=inp.rulebook.version),
        models=inp.models,
        degraded=any(r.id == DEGRADED for _, r in pairs),
    )
