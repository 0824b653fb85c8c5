"""Named word lists that regex rules reference as ``{{name}}``, so long lists live in maintained data files.

A rulebook's ``lexicons:`` maps a name to a list of terms or to a lexicon file (``rules/lexicons/``, with
its source and the date it was last checked). Each ``{{name}}`` in a rule's regex becomes one RE2
alternation of whole words that tolerates repeated letters (``idiiiot``) and optional punctuation inside a
term (``co-codamol``, ``cocodamol``), so a list is written once, plainly, and stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation_service.core.normalise import normalise
from moderation_service.core.rulebook.paths import find_confined, is_plain_reference, search_folders
from moderation_service.core.rulebook.schema import Rule, Terms, Unless
from moderation_service.core.rulebook.yaml_lines import LocatedYaml, read_located_yaml
from moderation_service.errors import Problem, RulebookError

__all__ = ["LexiconFile", "expand", "expand_rules", "load_lexicons", "term_pattern"]

_REF = re.compile(r"\{\{([a-z0-9_]+)\}\}")  # rule-file text only, never user input


class LexiconFile(BaseModel):
    """A maintained list: what it is, where it comes from, when it was last checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1)
    source: str = Field(min_length=1)
    checked: date = Field(description="when the list was last checked against its source")
    terms: tuple[str, ...] = Field(min_length=1)


def term_pattern(term: str) -> str:
    """One term as RE2 on the folded view: letters may repeat, inner punctuation is optional, ``*`` = any ending."""
    prefix = term.endswith("*")
    folded = normalise(term.rstrip("*")).folded.text.strip()
    if not any(c.isalnum() for c in folded):
        raise ValueError(f"term {term!r} has no letters or digits left after normalising")
    out: list[str] = []
    for char in folded:
        if char in "il":
            out.append("[il]+")  # leet "1" is folded to "i" but often stands for "l" (disab1ed)
        elif char.isalnum():
            out.append(re.escape(char) + ("+" if char.isalpha() else ""))
        elif char == " ":
            out.append(r"[^a-z0-9]+")
        else:
            out.append(r"[^a-z0-9]*")
    body = "".join(out)
    head = r"\b" if folded[0].isalnum() else ""
    tail = r"\w*" if prefix else (r"\b" if folded[-1].isalnum() else "")
    return head + body + tail


def _alternation(terms: tuple[str, ...]) -> str:
    # Longest first (so alternation prefers it), ties in a fixed order: the pattern, and so the rulebook's
    # version hash, must be the same in every process (a set's order changes with each interpreter's hash seed).
    return "(?:" + "|".join(term_pattern(t) for t in sorted(set(terms), key=lambda t: (-len(t), t))) + ")"


def expand(regex: str, lexicons: Mapping[str, tuple[str, ...]]) -> str:
    """``regex`` with every ``{{name}}`` replaced; KeyError names the first unknown lexicon."""
    return _REF.sub(lambda m: _alternation(lexicons[m.group(1)]), regex)


def _lexicon_problems(doc: LocatedYaml, exc: ValidationError) -> list[Problem]:
    """Where a lexicon file is wrong, by line and known field only: its unknown keys are its own text, not repeated."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(error["loc"])
        known = bool(loc) and loc[0] in LexiconFile.model_fields
        where = ".".join(str(p) for p in loc) if known else "(file)"
        problems.append(doc.problem(loc, f"{where}: {error['msg']}"))
    return problems


def load_lexicons(
    doc: LocatedYaml, entries: Mapping[str, str | tuple[str, ...]], rules_dir: Path | None = None
) -> dict[str, tuple[str, ...]]:
    """A rulebook's ``lexicons:``, files found beside the rulebook or in the rules folder (never outside them)."""
    out: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    folders = search_folders(doc.path, rules_dir)
    for name, entry in entries.items():
        if not isinstance(entry, str):
            out[name] = entry
            continue
        if not is_plain_reference(entry):
            message = f"a lexicon must name a file in the rules folder (e.g. 'lexicons/insults.yaml'), not a path: {entry!r}"
            problems.append(doc.problem(("lexicons", name), message))
            continue
        path = find_confined(entry, folders)
        if path is None:
            problems.append(doc.problem(("lexicons", name), f"lexicon file not found in the rules folder: {entry}"))
            continue
        try:
            lex_doc = read_located_yaml(path)
            out[name] = LexiconFile.model_validate(lex_doc.data).terms
        except RulebookError as exc:
            problems += exc.problems
        except ValidationError as exc:
            problems += _lexicon_problems(lex_doc, exc)
    for name, terms in out.items():
        for term in terms:
            try:
                term_pattern(term)
            except ValueError as exc:
                problems.append(doc.problem(("lexicons", name), str(exc)))
    if problems:
        raise RulebookError(problems)
    return out


def _expand_terms(
    terms: tuple[str, ...], lexicons: Mapping[str, tuple[str, ...]], where: tuple[str | int, ...], doc: LocatedYaml, problems: list[Problem]
) -> tuple[str, ...]:
    out = []
    for k, regex in enumerate(terms):
        try:
            out.append(expand(regex, lexicons))
        except KeyError as exc:
            known = ", ".join(sorted(lexicons)) or "none"
            problems.append(doc.problem((*where, "regex", k), f"unknown lexicon {exc.args[0]!r}; known: {known}"))
            out.append(regex)
    return tuple(out)


def expand_rules(doc: LocatedYaml, rules: tuple[Rule, ...], lexicons: Mapping[str, tuple[str, ...]]) -> tuple[Rule, ...]:
    """Rules with lexicon references expanded in every regex (match and unless)."""
    problems: list[Problem] = []
    out = []
    for i, rule in enumerate(rules):
        loc: tuple[str | int, ...] = ("rules", i)
        any_ = rule.match.any
        if any_ is not None:
            any_ = any_.model_copy(update={"regex": _expand_terms(any_.regex, lexicons, (*loc, "match", "any"), doc, problems)})
        all_: list[Terms] = [
            t.model_copy(update={"regex": _expand_terms(t.regex, lexicons, (*loc, "match", "all", j), doc, problems)})
            for j, t in enumerate(rule.match.all)
        ]
        unless: Unless = rule.unless.model_copy(
            update={"regex": _expand_terms(rule.unless.regex, lexicons, (*loc, "unless"), doc, problems)}
        )
        match = rule.match.model_copy(update={"any": any_, "all": tuple(all_)})
        out.append(rule.model_copy(update={"match": match, "unless": unless}))
    if problems:
        raise RulebookError(problems)
    return tuple(out)
