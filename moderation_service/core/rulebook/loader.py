"""Load a rule file: parse, validate, resolve ``extends``, check semantics, compile, hash.

Every problem found is reported at once, each naming file, line and rule id, so a moderator
can fix a file in one pass; nothing invalid is ever half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from moderation_service.core.decision import Action
from moderation_service.core.rulebook.lexicons import expand_rules, load_lexicons
from moderation_service.core.rulebook.matcher import RuleMatcher, phrase_pattern, regex_error
from moderation_service.core.rulebook.paths import find_confined, is_plain_reference, search_folders
from moderation_service.core.rulebook.schema import Category, CrisisPolicy, Outcome, Rule, RuleFile, RuleTest, Threshold
from moderation_service.core.rulebook.yaml_lines import LocatedYaml, read_located_yaml
from moderation_service.errors import Problem, RulebookError

__all__ = ["Rulebook", "load_rulebook"]


@dataclass(frozen=True)
class Rulebook:
    """A resolved, validated and compiled rulebook, ready to enforce."""

    name: str
    title: str
    community: str
    version_note: str
    intro: str
    signposting_message: str | None
    categories: dict[str, Category]
    thresholds: dict[str, Threshold]
    rules: tuple[Rule, ...]
    crisis: CrisisPolicy
    tests: tuple[RuleTest, ...]
    path: Path
    version: str
    matcher: RuleMatcher


def _validate(doc: LocatedYaml) -> RuleFile:
    if not isinstance(doc.data, dict):
        raise RulebookError([doc.problem((), "a rule file must be a YAML mapping")])
    try:
        return RuleFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = tuple(error["loc"])
            where = ".".join(str(part) for part in loc) or "(file)"
            problems.append(doc.problem(loc, f"{where}: {error['msg']}"))
        raise RulebookError(problems) from exc


def _terms_problems(doc: LocatedYaml, loc: tuple[str | int, ...], node: Any) -> list[Problem]:
    """Phrases and RE2 patterns anywhere under ``node`` (raw YAML), for a file whose schema failed."""
    problems: list[Problem] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "regex" and isinstance(value, list):
                for k, regex in enumerate(value):
                    # {{lexicon}} references are expanded later; a plain word stands in for one here.
                    why = regex_error(re.sub(r"\{\{[a-z0-9_]+\}\}", "x", regex)) if isinstance(regex, str) else None
                    if why is not None:
                        problems.append(doc.problem((*loc, key, k), f"RE2 cannot compile {regex!r}: {why}"))
            elif key == "phrases" and isinstance(value, list):
                for k, phrase in enumerate(value):
                    try:
                        phrase_pattern(str(phrase))
                    except ValueError as exc:
                        problems.append(doc.problem((*loc, key, k), str(exc)))
            else:
                problems += _terms_problems(doc, (*loc, str(key)), value)
    elif isinstance(node, list):
        for k, item in enumerate(node):
            problems += _terms_problems(doc, (*loc, k), item)
    return problems


def _unvalidated_problems(doc: LocatedYaml, path: Path, chain: tuple[Path, ...], rules_dir: Path | None) -> list[Problem]:
    """What the later checks can still say about a file the schema refused, so one run reports everything."""
    data = doc.data if isinstance(doc.data, dict) else {}
    raw = data.get("rules")
    raw_rules: list[Any] = raw if isinstance(raw, list) else []
    known: set[str] | None = set(data["categories"]) if isinstance(data.get("categories"), dict) else set()
    if isinstance(data.get("extends"), str):
        try:
            parent_path = _extended_path(doc, path, data["extends"], rules_dir)
            known = set(_resolve(parent_path, (*chain, parent_path), rules_dir)[1]) | (known or set())
        except RulebookError:
            known = None  # the parent's categories are unknown: no category check rather than a false one
    problems: list[Problem] = []
    for i, rule in enumerate(raw_rules):
        if not isinstance(rule, dict):
            continue
        category = rule.get("category")
        if known is not None and isinstance(category, str) and category not in known:
            problems.append(doc.problem(("rules", i, "category"), f"unknown category {category!r}; known: {', '.join(sorted(known))}"))
        problems += _terms_problems(doc, ("rules", i), {k: v for k, v in rule.items() if k in ("match", "unless")})
    return problems


def _check_outcome(doc: LocatedYaml, loc: tuple[str | int, ...], outcome: Outcome, category: Category | None) -> list[Problem]:
    """Support categories (distress) must signpost and may never lead to a plain hold."""
    if category is None or not category.support:
        return []
    problems = []
    if outcome.action is Action.hold:
        problems.append(
            doc.problem(loc, "a support category may not 'hold' alone: use 'escalate' (with publish: false) so a person sees it")
        )
    if not outcome.signpost:
        problems.append(doc.problem(loc, "a support category must set signpost: true"))
    return problems


def _check_rules(doc: LocatedYaml, file: RuleFile, categories: dict[str, Category]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, rule in enumerate(file.rules):
        loc: tuple[str | int, ...] = ("rules", i)
        if rule.id in seen:
            problems.append(doc.problem((*loc, "id"), f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        category = categories.get(rule.category)
        if category is None:
            problems.append(doc.problem((*loc, "category"), f"unknown category {rule.category!r}; known: {', '.join(sorted(categories))}"))
        problems += _check_outcome(doc, loc, rule, category)
        groups = ([("any", rule.match.any)] if rule.match.any else []) + [(j, t) for j, t in enumerate(rule.match.all)]
        term_sets: list[tuple[tuple[str | int, ...], tuple[str, ...], tuple[str, ...]]] = [
            ((*loc, "match", *(("any",) if key == "any" else ("all", key))), terms.phrases, terms.regex) for key, terms in groups
        ]
        term_sets.append(((*loc, "unless"), rule.unless.phrases, rule.unless.regex))
        for where, phrases, regexes in term_sets:
            for k, phrase in enumerate(phrases):
                try:
                    phrase_pattern(phrase)
                except ValueError as exc:
                    problems.append(doc.problem((*where, "phrases", k), str(exc)))
            for k, regex in enumerate(regexes):
                why = regex_error(regex)
                if why is not None:
                    problems.append(doc.problem((*where, "regex", k), f"RE2 cannot compile {regex!r}: {why}"))
    return problems


def _check_thresholds(doc: LocatedYaml, thresholds: dict[str, Threshold], categories: dict[str, Category]) -> list[Problem]:
    problems = []
    for label, threshold in thresholds.items():
        category = categories.get(threshold.category)
        if category is None:
            problems.append(doc.problem(("thresholds", label, "category"), f"unknown category {threshold.category!r}"))
        mins = [band.min for band in threshold.bands]
        if mins != sorted(mins) or len(set(mins)) != len(mins):
            problems.append(doc.problem(("thresholds", label, "bands"), "bands must be in increasing order of min"))
        for j, band in enumerate(threshold.bands):
            problems += _check_outcome(doc, ("thresholds", label, "bands", j), band, category)
    return problems


def _check_tests(doc: LocatedYaml, tests: tuple[RuleTest, ...], rule_ids: set[str]) -> list[Problem]:
    problems = []
    for i, test in enumerate(tests):
        for key in ("triggers", "not_triggers"):
            for rule_id in getattr(test, key):
                if rule_id not in rule_ids:
                    problems.append(doc.problem(("tests", i, key), f"test names unknown rule {rule_id!r}"))
    return problems


def _check_crisis(doc: LocatedYaml, crisis: CrisisPolicy, categories: dict[str, Category]) -> list[Problem]:
    category = categories.get(crisis.category)
    if category is None:
        return [doc.problem(("crisis", "category"), f"unknown category {crisis.category!r}")]
    if not category.support:
        return [doc.problem(("crisis", "category"), f"crisis risk must belong to a support category; {crisis.category!r} is not")]
    return []


def _version(
    name: str, categories: dict[str, Category], thresholds: dict[str, Threshold], rules: tuple[Rule, ...], crisis: CrisisPolicy
) -> str:
    """Content hash of what is enforced, so a decision names exactly the rules that made it."""
    payload = {
        "name": name,
        "crisis": crisis.model_dump(mode="json"),
        "categories": {k: v.model_dump(mode="json") for k, v in sorted(categories.items())},
        "thresholds": {k: v.model_dump(mode="json") for k, v in sorted(thresholds.items())},
        "rules": [r.model_dump(mode="json") for r in rules],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _extended_path(doc: LocatedYaml, path: Path, extends: str, rules_dir: Path | None) -> Path:
    """``extends`` names a rulebook (``peer-support``) or a file (``peer-support.yaml``) beside the file or in the rules folder.

    Never a path out of those folders (no ``..``, no absolute path, no link leading outside): a rule
    file must not be able to read arbitrary YAML on the server.
    """
    if not is_plain_reference(extends):
        message = f"extends must name a rulebook in the rules folder (e.g. 'extends: peer-support'), not a path: {extends!r}"
        raise RulebookError([doc.problem(("extends",), message)])
    name = extends if PurePosixPath(extends).suffix in (".yaml", ".yml") else f"{extends}.yaml"
    folders = search_folders(path, rules_dir)
    found = find_confined(name, folders)
    if found is not None:
        return found
    where = " or ".join(str(f) for f in folders)
    raise RulebookError([doc.problem(("extends",), f"extended rulebook {extends!r} not found in {where}")])


Lexicons = dict[str, tuple[str, ...]]


def _resolve(
    path: Path, chain: tuple[Path, ...], rules_dir: Path | None = None
) -> tuple[RuleFile, dict[str, Category], dict[str, Threshold], tuple[Rule, ...], CrisisPolicy, LocatedYaml, Lexicons]:
    doc = read_located_yaml(path)
    try:
        file = _validate(doc)
    except RulebookError as exc:
        raise RulebookError([*exc.problems, *_unvalidated_problems(doc, path, chain, rules_dir)]) from exc
    categories: dict[str, Category] = {}
    thresholds: dict[str, Threshold] = {}
    rules: list[Rule] = []
    crisis = CrisisPolicy()
    lexicons: Lexicons = {}
    if file.extends:
        parent_path = _extended_path(doc, path, file.extends, rules_dir)
        if parent_path in chain:
            raise RulebookError([doc.problem(("extends",), f"extends cycle through {parent_path.name}")])
        _, categories, thresholds, parent_rules, crisis, _, lexicons = _resolve(parent_path, (*chain, parent_path), rules_dir)
        parent_ids = {r.id for r in parent_rules}
        unknown = [rule_id for rule_id in file.disable if rule_id not in parent_ids]
        if unknown:
            raise RulebookError([doc.problem(("disable",), f"disable names rules the parent lacks: {', '.join(unknown)}")])
        rules = [r for r in parent_rules if r.id not in file.disable]
    elif file.disable:
        raise RulebookError([doc.problem(("disable",), "disable only makes sense with extends")])
    lexicons = {**lexicons, **load_lexicons(doc, file.lexicons, rules_dir)}
    file = file.model_copy(update={"rules": expand_rules(doc, file.rules, lexicons)})
    categories = {**categories, **file.categories}
    thresholds = {**thresholds, **file.thresholds}
    own = {r.id: r for r in file.rules}
    rules = [own.pop(r.id, r) for r in rules] + [r for r in file.rules if r.id in own]
    return file, categories, thresholds, tuple(rules), file.crisis or crisis, doc, lexicons


def load_rulebook(path: Path, allowed_numbers: frozenset[str] = frozenset(), rules_dir: Path | None = None) -> Rulebook:
    """Load and compile ``path``; raise RulebookError listing every problem found.

    ``extends`` is looked up beside ``path``, then in ``rules_dir`` (the live rules folder).
    """
    path = path.resolve()
    file, categories, thresholds, rules, crisis, doc, _ = _resolve(path, (path,), rules_dir)
    problems = _check_rules(doc, file, categories)
    if file.crisis is not None:  # the default policy needs no category: crisis risk is met whatever a rulebook says
        problems += _check_crisis(doc, crisis, categories)
    problems += _check_thresholds(doc, dict(file.thresholds), categories)
    problems += _check_tests(doc, file.tests, {r.id for r in rules})
    if problems:
        raise RulebookError(problems)
    try:
        matcher = RuleMatcher(rules, allowed_numbers)
    except ValueError as exc:  # pragma: no cover - every pattern was checked above
        raise RulebookError([doc.problem(("rules",), str(exc))]) from exc
    return Rulebook(
        name=file.name,
        title=file.title,
        community=file.community,
        version_note=file.version_note,
        intro=file.intro,
        signposting_message=file.signposting_message,
        categories=categories,
        thresholds=thresholds,
        rules=rules,
        crisis=crisis,
        tests=file.tests,
        path=path,
        version=_version(file.name, categories, thresholds, rules, crisis),
        matcher=matcher,
    )
