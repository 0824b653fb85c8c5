"""Compile every rule of a rulebook once into RE2 sets, then match a post in one pass per view.

RE2 guarantees linear time on any input (no catastrophic backtracking). A ``Set`` tells which
patterns match at all; only those are re-run to find spans, so cost barely grows with rule count.
Exceptions (``unless``) are run only for rules that matched, each distinct pattern once: they are
long sentence-scope patterns shared by many rules, and in the sets they would slow every post.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import re2

from moderation_service.core.author import AuthorFacts
from moderation_service.core.detectors import find, re2_options
from moderation_service.core.normalise import Normalised, fold_phrase
from moderation_service.core.rulebook.schema import Detector, Rule

__all__ = ["RuleHit", "RuleMatcher", "phrase_pattern", "regex_error"]

Span = tuple[int, int]
Slot = tuple[int, str, int]  # (rule index, "any" | "all" | "unless", group index)


@dataclass(frozen=True)
class RuleHit:
    rule: Rule
    field: str
    start: int
    end: int


@cache
def phrase_pattern(phrase: str) -> str:
    """A phrase as an RE2 pattern on the squeezed view: whole words, any spacing, ``*`` = prefix."""
    words = fold_phrase(phrase.rstrip("*")).split()
    if not words:
        raise ValueError(f"phrase {phrase!r} has no letters or digits left after normalising")
    body = r"[^a-z0-9]+".join(re2.escape(w) for w in words)  # the squeezed view is folded to ASCII where it matters
    head = r"\b" if words[0][0].isalnum() else ""
    tail = r"\w*" if phrase.endswith("*") else (r"\b" if words[-1][-1].isalnum() else "")
    return head + body + tail


def regex_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern``, or None when it compiles."""
    try:
        re2.compile(pattern, options=re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        return detail.decode() if isinstance(detail, bytes) else str(detail)
    return None


@cache
def _compiled(pattern: str) -> re2._Regexp:
    """One compiled pattern per distinct source, shared by every rule (and rulebook) that uses it."""
    return re2.compile(pattern, options=re2_options())


@cache
def _quote_patterns() -> tuple[re2._Regexp, ...]:
    sources = (r'"[^"\n]+"', r"“[^”\n]+”", r"(?m)^\s*>[^\n]*")
    return tuple(re2.compile(s, options=re2_options()) for s in sources)


def _quoted_spans(text: str) -> list[Span]:
    return [(m.start(), m.end()) for p in _quote_patterns() for m in p.finditer(text)]


class _ViewSet:
    """One RE2 Set over one normalised view, remembering which slot each pattern belongs to."""

    def __init__(self) -> None:
        options = re2_options()
        options.max_mem = 256 << 20  # a Set's DFA holds every pattern at once; 8 MiB is too little for thousands
        self._set = re2.Set.SearchSet(options)
        self._entries: list[tuple[Slot, re2._Regexp]] = []

    def add(self, pattern: str, slot: Slot) -> None:
        if self._set.Add(pattern) < 0:
            raise ValueError(f"RE2 refused pattern {pattern!r}")
        self._entries.append((slot, re2.compile(pattern, options=re2_options())))

    def compile(self) -> None:
        if self._entries:
            try:
                self._set.Compile()
            except re2.error as exc:
                raise ValueError("RE2 could not compile the rule set (too large for its memory budget)") from exc

    def scan(self, text: str) -> Iterable[tuple[Slot, int, int]]:
        if not self._entries or not text:
            return
        for index in self._set.Match(text) or ():
            slot, compiled = self._entries[index]
            for m in compiled.finditer(text):
                yield slot, m.start(), m.end()


class RuleMatcher:
    """All rules of one rulebook, compiled; ``match`` returns the rules a post breaks."""

    def __init__(self, rules: tuple[Rule, ...], allowed_numbers: Iterable[str] = ()) -> None:
        self.rules = rules
        self._allowed_numbers = frozenset(allowed_numbers)
        self._squeezed = _ViewSet()
        self._folded = _ViewSet()
        self._detectors: dict[Detector, list[Slot]] = defaultdict(list)
        self._needs_quotes = any(rule.unless.quoted for rule in rules)
        self._unless: dict[int, tuple[tuple[re2._Regexp, ...], tuple[re2._Regexp, ...]]] = {}
        for index, rule in enumerate(rules):
            groups = ([("any", 0, rule.match.any)] if rule.match.any else []) + [
                ("all", j, terms) for j, terms in enumerate(rule.match.all)
            ]
            for role, group, terms in groups:
                self._add_terms((index, role, group), terms.phrases, terms.regex)
                for kind in terms.detect:
                    self._detectors[kind].append((index, role, group))
            if rule.unless.phrases or rule.unless.regex:
                squeezed = tuple(_compiled(phrase_pattern(phrase)) for phrase in rule.unless.phrases)
                self._unless[index] = (squeezed, tuple(_compiled(f"(?i){regex}") for regex in rule.unless.regex))
        self._squeezed.compile()
        self._folded.compile()

    def _add_terms(self, slot: Slot, phrases: Iterable[str], regexes: Iterable[str]) -> None:
        for phrase in phrases:
            self._squeezed.add(phrase_pattern(phrase), slot)
        for regex in regexes:
            self._folded.add(f"(?i){regex}", slot)

    def _find(self, text: str, norm: Normalised, region: str) -> dict[Slot, list[Span]]:
        found: dict[Slot, list[Span]] = defaultdict(list)
        for view_set, view in ((self._squeezed, norm.squeezed), (self._folded, norm.folded)):
            for slot, start, end in view_set.scan(view.text):
                found[slot].append(view.original_span(start, end))
        for kind, slots in self._detectors.items():
            spans = find(kind, text, region, self._allowed_numbers)
            for slot in slots:
                found[slot].extend(spans)
        self._find_exceptions(norm, found)
        return found

    def _find_exceptions(self, norm: Normalised, found: dict[Slot, list[Span]]) -> None:
        """``unless`` spans, only for rules that matched something; a pattern shared by rules runs once."""
        seen: dict[tuple[int, int], list[Span]] = {}
        for index in sorted({slot[0] for slot, spans in found.items() if spans and slot[1] != "unless"}):
            exceptions = self._unless.get(index)
            if exceptions is None:
                continue
            for view, patterns in ((norm.squeezed, exceptions[0]), (norm.folded, exceptions[1])):
                for pattern in patterns:
                    key = (id(view), id(pattern))
                    if key not in seen:
                        seen[key] = [view.original_span(m.start(), m.end()) for m in pattern.finditer(view.text)] if view.text else []
                    found[(index, "unless", 0)].extend(seen[key])

    def match(self, fields: Mapping[str, Normalised], author: AuthorFacts, region: str) -> list[RuleHit]:
        """Rules broken by a post (fields already normalised), one hit per rule, in rulebook order.

        ``region`` (e.g. "GB") is how phone numbers are read; the caller derives it from the post's locale.
        """
        hits: dict[int, RuleHit] = {}
        for field, norm in fields.items():
            text = norm.original
            if not text:
                continue
            found = self._find(text, norm, region)
            quotes = _quoted_spans(text) if self._needs_quotes else []
            for index in sorted({slot[0] for slot in found}):
                rule = self.rules[index]
                if index in hits or field not in rule.scope or not _author_applies(rule, author):
                    continue
                span = _evaluate(index, rule, found, quotes)
                if span is not None:
                    hits[index] = RuleHit(rule, field, span[0], span[1])
        return [hits[i] for i in sorted(hits)]


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _inside(a: Span, b: Span) -> bool:
    return b[0] <= a[0] and a[1] <= b[1]


def _evaluate(index: int, rule: Rule, found: Mapping[Slot, list[Span]], quotes: list[Span]) -> Span | None:
    """The first surviving span when the rule's any/all/unless logic holds, else None."""
    exceptions = found.get((index, "unless", 0), [])

    def surviving(spans: list[Span]) -> list[Span]:
        kept = [s for s in spans if not any(_overlaps(s, e) for e in exceptions)]
        if rule.unless.quoted:
            kept = [s for s in kept if not any(_inside(s, q) for q in quotes)]
        return sorted(kept)

    first: list[Span] = []
    if rule.match.any is not None:
        first = surviving(found.get((index, "any", 0), []))
        if not first:
            return None
    for group in range(len(rule.match.all)):
        spans = surviving(found.get((index, "all", group), []))
        if not spans:
            return None
        first = first or spans
    return first[0]


def _author_applies(rule: Rule, author: AuthorFacts) -> bool:
    """Unknown facts mean the condition is not met: a rule for new accounts needs the account age."""
    condition = rule.author
    if condition is None:
        return True
    if condition.max_account_age_days is not None and (
        author.account_age_days is None or author.account_age_days > condition.max_account_age_days
    ):
        return False
    return condition.max_approved_posts is None or (
        author.approved_posts is not None and author.approved_posts <= condition.max_approved_posts
    )
