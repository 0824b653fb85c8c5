"""Turn rule hits and classifier scores into one Decision, using the rulebook's thresholds.

The most severe action wins. Distress is support, not a violation: it signposts the author and
reaches a human queue, and never removes a post by itself (the rulebook loader refuses a support
category that would only hold). As a last guard the policy itself escalates high distress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from moderation_service.core.crisis.assess import RiskAssessment
from moderation_service.core.crisis.dimensions import Dimension, RiskSignal
from moderation_service.core.decision import (
    DISTRESS_ORDER,
    SEVERITY,
    Action,
    Decision,
    DistressLevel,
    Priority,
    Reason,
    ReasonSource,
    RulebookRef,
    Span,
    TextField,
)
from moderation_service.core.rulebook.loader import Rulebook
from moderation_service.core.rulebook.matcher import RuleHit
from moderation_service.core.rulebook.schema import Band, CrisisPolicy, Outcome
from moderation_service.core.signposting import SignpostDirectory

__all__ = ["DEGRADED", "LANGUAGE_UNSUPPORTED", "PolicyInput", "decide"]

DEGRADED = "moderation_degraded"
LANGUAGE_UNSUPPORTED = "language_unsupported"
_NO_RISK = RiskAssessment(level=DistressLevel.none, dimensions=frozenset(), signals=())

# What each dimension means, for the moderator reading the reasons (never the author's words).
DIMENSION_TEXT = {
    Dimension.passive_ideation: "wish to be dead",
    Dimension.active_ideation: "thoughts of suicide",
    Dimension.intent: "says they will act",
    Dimension.means: "a method or means at hand",
    Dimension.plan: "a plan",
    Dimension.timing: "a time",
    Dimension.preparation: "preparations (stockpiling, goodbyes, a will, giving things away)",
    Dimension.attempt: "an attempt in progress or just made",
    Dimension.self_harm: "recent self-harm",
    Dimension.concern_other: "worried that someone else is at risk",
    Dimension.hopelessness: "hopelessness or low mood",
}
_LEVEL_TEXT = {
    DistressLevel.imminent: "Imminent risk: a moderator must see this now",
    DistressLevel.high: "Risk of suicide or self-harm: a moderator should check in",
    DistressLevel.low: "Low mood: support offered",
}


@dataclass(frozen=True)
class PolicyInput:
    rulebook: Rulebook
    hits: list[RuleHit]
    scores: Mapping[str, float]
    degraded: Iterable[str]  # names of classifiers that failed or timed out
    locale: str
    fallback_action: Action
    models: tuple[str, ...] = ()
    risk: RiskAssessment = _NO_RISK
    language: str | None = None
    language_supported: bool = True


def _band(bands: Iterable[Band], score: float) -> Band | None:
    """The highest band the score reaches (bands are validated to be in increasing order)."""
    reached = [band for band in bands if score >= band.min]
    return reached[-1] if reached else None


def _collect(inp: PolicyInput) -> list[tuple[Outcome, Reason]]:
    pairs: list[tuple[Outcome, Reason]] = []
    for hit in inp.hits:
        rule = hit.rule
        span = Span(field=TextField(hit.field), start=hit.start, end=hit.end)
        reason = Reason(
            source=ReasonSource.rule,
            id=rule.id,
            category=rule.category,
            action=rule.action,
            message=rule.message or rule.description,
            span=span,
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
                source=ReasonSource.model, id=label, category=threshold.category, action=band.action, message=message, score=round(score, 4)
            )
            pairs.append((band, reason))
    pairs += _crisis(inp.risk, inp.rulebook.crisis)
    if not inp.language_supported and inp.rulebook.crisis.unsupported_language is Action.hold:
        message = "this language is not supported by the automatic checks; held for a person to review"
        outcome = Outcome(action=Action.hold)
        pairs.append(
            (outcome, Reason(source=ReasonSource.system, id=LANGUAGE_UNSUPPORTED, category="system", action=Action.hold, message=message))
        )
    failed = sorted(set(inp.degraded))
    if failed:
        fallback = Outcome(action=inp.fallback_action, priority=Priority.normal if inp.fallback_action is Action.escalate else None)
        message = f"automatic checks unavailable ({', '.join(failed)}); held for a person to review"
        pairs.append(
            (fallback, Reason(source=ReasonSource.system, id=DEGRADED, category="system", action=inp.fallback_action, message=message))
        )
    return pairs


def _crisis_outcome(level: DistressLevel, policy: CrisisPolicy) -> Outcome:
    """Imminent: urgent and withheld until a person has seen it; high: a person checks in, the post stays up."""
    if level not in (DistressLevel.imminent, DistressLevel.high):
        return Outcome(action=Action.allow, signpost=True, distress_level=level)
    imminent = level is DistressLevel.imminent
    return Outcome(
        action=Action.escalate,
        priority=Priority.urgent if imminent else Priority.normal,
        publish=not imminent,
        signpost=True,
        distress_level=level,
        content_warning=policy.content_warning,
        message=policy.messages.imminent if imminent else policy.messages.high,
    )


def _signal_reason(signal: RiskSignal, action: Action, category: str) -> Reason:
    span = Span(field=TextField(signal.field), start=signal.start, end=signal.end) if signal.field and signal.start is not None else None
    score = round(signal.score, 4) if signal.score is not None else None
    message = f"{signal.dimension.value}: {DIMENSION_TEXT[signal.dimension]}"
    if signal.supporting:
        message += " (weak model signal, counted beside the others)"
    return Reason(
        source=ReasonSource(signal.source),
        id=f"crisis.{signal.dimension.value}",
        category=category,
        action=action,
        message=message,
        span=span,
        score=score,
    )


def _crisis(risk: RiskAssessment, policy: CrisisPolicy) -> list[tuple[Outcome, Reason]]:
    """One summary reason naming the level and dimensions, then one reason per signal (with its span)."""
    if risk.level is DistressLevel.none:
        return []
    outcome = _crisis_outcome(risk.level, policy)
    found = ", ".join(d.value for d in Dimension if d in risk.dimensions) or "risk-level model"
    summary = Reason(
        source=ReasonSource.crisis,
        id=f"crisis.{risk.level.value}",
        category=policy.category,
        action=outcome.action,
        message=f"{_LEVEL_TEXT[risk.level]} ({found})",
    )
    pairs = [(outcome, summary)]
    if risk.model_level is not DistressLevel.none:
        message = f"the risk-level model reads this as {risk.model_level.value}"
        score = round(risk.model_score, 4) if risk.model_score is not None else None
        pairs.append(
            (
                outcome,
                Reason(
                    source=ReasonSource.model,
                    id="crisis.model_level",
                    category=policy.category,
                    action=outcome.action,
                    message=message,
                    score=score,
                ),
            )
        )
    pairs += [(outcome, _signal_reason(signal, outcome.action, policy.category)) for signal in risk.signals]
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
    urgent = distress is DistressLevel.imminent
    signposting = directory.lookup(inp.locale, inp.rulebook.signposting_message, urgent=urgent) if signpost else None
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
        language=inp.language,
        language_supported=inp.language_supported,
        risk_dimensions=tuple(d.value for d in Dimension if d in inp.risk.dimensions),
    )
