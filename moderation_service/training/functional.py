"""Functional test suites (``tests/suites/<name>/*.yaml``): what the service decides, one functionality at a time.

After the published method of functional suites (HateCheck, CheckList): each file is one
functionality, cases come in contrastive pairs, and the report is per functionality and per
target group, never one average. Suites are evaluation data only: no training or threshold
tuning reads them. Each suite has gates that CI enforces (``GATES``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation_service.core.author import AuthorFacts
from moderation_service.core.decision import DISTRESS_ORDER, Action, Decision, DistressLevel
from moderation_service.core.pipeline import Pipeline, Post
from moderation_service.errors import Problem, RulebookError

__all__ = [
    "GATES",
    "Case",
    "CaseOutcome",
    "Functionality",
    "Gate",
    "SuiteReport",
    "correct",
    "load_suite",
    "run_suite",
    "save_report",
    "suite_markdown",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Case(_Strict):
    id: str
    text: str = Field(min_length=1)
    title: str | None = None
    expect: str
    locale: str | None = None
    dimensions: tuple[str, ...] = ()
    target: str | None = None
    pair: str | None = None
    author: AuthorFacts | None = None


class Functionality(_Strict):
    functionality: str
    description: str
    group: str
    cases: tuple[Case, ...] = Field(min_length=1)


@dataclass(frozen=True)
class CaseOutcome:
    case: Case
    functionality: str
    group: str
    decision: Decision


@dataclass(frozen=True)
class Gate:
    """A bar the product must meet (``minimum``/``maximum``, from the issue) and the CI ratchet.

    The CI ratchet is what the shipped models and grammars reach today, so any regression fails CI;
    it moves up with every improvement and never down. Until a target is met the report says so.
    """

    name: str
    description: str
    metric: Callable[[list[CaseOutcome]], tuple[int, int]]  # (hits, total)
    minimum: float | None = None  # the share must be at least this
    maximum: float | None = None  # ... or at most this
    ci_minimum: float | None = None
    ci_maximum: float | None = None

    def passes(self, share: float) -> bool:
        return (self.minimum is None or share >= self.minimum) and (self.maximum is None or share <= self.maximum)

    def ci_passes(self, share: float) -> bool:
        return (self.ci_minimum is None or share >= self.ci_minimum) and (self.ci_maximum is None or share <= self.ci_maximum)


def _escalated(d: Decision) -> bool:
    return d.action is Action.escalate


def _count(outcomes: Iterable[CaseOutcome], include: Callable[[CaseOutcome], bool], hit: Callable[[CaseOutcome], bool]) -> tuple[int, int]:
    chosen = [o for o in outcomes if include(o)]
    return sum(hit(o) for o in chosen), len(chosen)


def _expects(*levels: str) -> Callable[[CaseOutcome], bool]:
    return lambda o: o.case.expect in levels


GATES: dict[str, tuple[Gate, ...]] = {
    "crisis": (
        Gate(
            "imminent_recall",
            "imminent cases escalated urgently (withheld until a person has seen them)",
            lambda os: _count(os, _expects("imminent"), lambda o: o.decision.distress_level is DistressLevel.imminent),
            minimum=0.95,
            ci_minimum=0.77,  # 77.8 % (heads 1.2.0; was 75.0 %)
        ),
        Gate(
            "risk_escalation_recall",
            "high and imminent cases escalated to a moderator",
            lambda os: _count(os, _expects("high", "imminent"), lambda o: _escalated(o.decision)),
            minimum=0.95,
            ci_minimum=0.82,  # 82.6 % (heads 1.2.0; was 81.7 %)
        ),
        Gate(
            "false_escalations",
            "cases expecting none or low that were escalated",
            lambda os: _count(os, _expects("none", "low"), lambda o: _escalated(o.decision)),
            maximum=0.05,
            ci_maximum=0.22,  # 20.4 % (heads 1.2.0; was 22.2 %)
        ),
    ),
    "abuse": (
        Gate(
            "abusive_recall",
            "abusive cases held or escalated",
            lambda os: _count(os, _expects("hold", "escalate"), lambda o: o.decision.action is not Action.allow),
            minimum=0.90,
            ci_minimum=0.62,  # 62.4 % (heads 1.2.0; 62.8 % before; 38.3 % before the issue #10 rules)
        ),
        Gate(
            "false_holds",
            "must-allow cases held or escalated",
            lambda os: _count(os, _expects("allow"), lambda o: o.decision.action is not Action.allow),
            maximum=0.10,
            ci_maximum=0.10,  # 9.2 % (heads 1.2.0; 9.5 % before; 12.1 % before the issue #10 rules)
        ),
    ),
}


def correct(case: Case, decision: Decision) -> bool:
    """Whether one decision is what the case expects (levels for crisis, actions for abuse)."""
    if case.expect in ("imminent", "high", "low", "none"):
        got = DISTRESS_ORDER[decision.distress_level]
        if case.expect == "imminent":
            return decision.distress_level is DistressLevel.imminent
        if case.expect == "high":
            return decision.action is Action.escalate and got >= 2
        return decision.action is not Action.escalate and (case.expect == "low" or got <= 1)
    if case.expect == "allow":
        return decision.action is Action.allow
    if case.expect == "hold":
        return decision.action is not Action.allow
    return decision.action is Action.escalate


def load_suite(folder: Path) -> list[Functionality]:
    """Every functionality file; a bad file is refused with its name and what is wrong."""
    problems: list[Problem] = []
    out: list[Functionality] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            out.append(Functionality.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))
        except (yaml.YAMLError, ValidationError) as exc:
            problems.append(Problem(str(path), None, None, str(exc).splitlines()[0]))
    if not out and not problems:
        problems.append(Problem(str(folder), None, None, "no suite files (*.yaml) here"))
    if problems:
        raise RulebookError(problems)
    return out


@dataclass(frozen=True)
class SuiteReport:
    name: str
    functionalities: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, Any]]
    gates: dict[str, dict[str, Any]]
    passed: bool  # every target met
    ci_passed: bool  # every CI ratchet held

    def as_json(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "passed": self.passed,
            "ci_passed": self.ci_passed,
            "gates": self.gates,
            "functionalities": self.functionalities,
            "targets": self.targets,
        }


def _post(case: Case) -> Post:
    author = case.author or AuthorFacts()
    return Post(text=case.text, title=case.title, locale=case.locale, author=author)


def run_suite(
    name: str, folder: Path, pipeline: Pipeline, progress: Callable[[str], None] = lambda _: None
) -> tuple[SuiteReport, list[CaseOutcome]]:
    outcomes: list[CaseOutcome] = []
    for functionality in load_suite(folder):
        progress(functionality.functionality)
        posts = [_post(case) for case in functionality.cases]
        for case, decision in zip(functionality.cases, pipeline.moderate_batch(posts), strict=True):
            outcomes.append(CaseOutcome(case, functionality.functionality, functionality.group, decision))
    per_func: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[CaseOutcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[outcome.functionality].append(outcome)
    for func, items in sorted(grouped.items()):
        right = sum(correct(o.case, o.decision) for o in items)
        per_func[func] = {
            "group": items[0].group,
            "cases": len(items),
            "correct": right,
            "accuracy": round(right / len(items), 4),
            "escalated": sum(_escalated(o.decision) for o in items),
            "wrong_ids": [o.case.id for o in items if not correct(o.case, o.decision)],
        }
    targets: dict[str, dict[str, Any]] = {}
    by_target: dict[str, list[CaseOutcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.case.target:
            by_target[outcome.case.target].append(outcome)
    for target, items in sorted(by_target.items()):
        right = sum(correct(o.case, o.decision) for o in items)
        targets[target] = {"cases": len(items), "correct": right, "accuracy": round(right / len(items), 4)}
    gates: dict[str, dict[str, Any]] = {}
    for gate in GATES.get(name, ()):
        hits, total = gate.metric(outcomes)
        share = hits / total if total else 0.0
        gates[gate.name] = {
            "description": gate.description,
            "hits": hits,
            "total": total,
            "share": round(share, 4),
            "minimum": gate.minimum,
            "maximum": gate.maximum,
            "passed": bool(total) and gate.passes(share),
            "ci_minimum": gate.ci_minimum,
            "ci_maximum": gate.ci_maximum,
            "ci_passed": bool(total) and gate.ci_passes(share),
        }
    passed = all(g["passed"] for g in gates.values())
    ci_passed = all(g["ci_passed"] for g in gates.values())
    return SuiteReport(name, per_func, targets, gates, passed, ci_passed), outcomes


def suite_markdown(report: SuiteReport) -> str:
    status = "every target met" if report.passed else ("targets not met; CI ratchet held" if report.ci_passed else "CI ratchet FAILED")
    lines = [f"# Functional suite: {report.name} ({status})", "", "| gate | result | target | CI ratchet |", "|---|---|---|---|"]
    for name, gate in report.gates.items():
        bar = f"≥ {gate['minimum']:.0%}" if gate["minimum"] is not None else f"≤ {gate['maximum']:.0%}"
        ci = f"≥ {gate['ci_minimum']:.0%}" if gate["ci_minimum"] is not None else f"≤ {gate['ci_maximum']:.0%}"
        result = f"{gate['hits']}/{gate['total']} = {gate['share']:.1%}"
        target = f"{bar} {'✓' if gate['passed'] else '✗'}"
        ratchet = f"{ci} {'✓' if gate['ci_passed'] else '✗'}"
        lines.append(f"| {name}: {gate['description']} | {result} | {target} | {ratchet} |")
    lines += ["", "| functionality | group | cases | correct | escalated |", "|---|---|---|---|---|"]
    for func, row in report.functionalities.items():
        lines.append(f"| {func} | {row['group']} | {row['cases']} | {row['correct']} ({row['accuracy']:.0%}) | {row['escalated']} |")
    if report.targets:
        lines += ["", "| target group | cases | correct |", "|---|---|---|"]
        for target, row in report.targets.items():
            lines.append(f"| {target} | {row['cases']} | {row['correct']} ({row['accuracy']:.0%}) |")
    return "\n".join(lines) + "\n"


def save_report(report: SuiteReport, out_dir: Path) -> list[Path]:
    """JSON, Markdown and a PNG bar chart of accuracy per functionality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"functional-{report.name}.json"
    json_path.write_text(json.dumps(report.as_json(), indent=1) + "\n", encoding="utf-8")
    md_path = out_dir / f"functional-{report.name}.md"
    md_path.write_text(suite_markdown(report), encoding="utf-8")
    names = list(report.functionalities)
    values = [report.functionalities[n]["accuracy"] for n in names]
    fig, ax = plt.subplots(figsize=(10, max(4.0, 0.28 * len(names))))
    ax.barh(names, values, color=["#2b7a3d" if v >= 0.9 else "#b8860b" if v >= 0.75 else "#b22222" for v in values])
    ax.set(xlim=(0, 1), xlabel="share of cases decided as expected", title=f"functional suite: {report.name}")
    ax.invert_yaxis()
    fig.tight_layout()
    png_path = out_dir / f"functional-{report.name}.png"
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return [json_path, md_path, png_path]
