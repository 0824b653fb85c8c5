"""The crisis grammar: risk patterns on lemmas, matched with spaCy's rule-based ``Matcher``.

One grammar per language (``rules/crisis/<language>.yaml``). A hit is kept only when it is the
author's own, current risk: hits inside an idiom, a quotation, a negated or hypothetical clause,
a sentence about the distant past, or a clause about someone else are dropped. Bare time words
("tonight") count as timing only next to another risk hit. Spans point at the original text.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2
import yaml
from pydantic import ValidationError
from spacy.matcher import Matcher
from spacy.vocab import Vocab

from moderation_service.core.crisis.anchored import AnchoredMatcher, PostDoc
from moderation_service.core.crisis.dimensions import Dimension, RiskSignal
from moderation_service.core.crisis.grammar_file import GrammarFile
from moderation_service.core.crisis.tokens import BOUNDARY, CLAUSE_BREAKS, Tokens, lemma_of, tokenize
from moderation_service.core.normalise import Normalised
from moderation_service.errors import Problem, RulebookError, load_each

__all__ = ["CrisisGrammar", "GrammarHit", "load_grammars"]

_GAP = re.compile(r"^~(\d)$")
_QUOTES = re2.compile(r'(?m)"[^"\n]{1,400}"|“[^”\n]{1,400}”|^[ \t]*>[^\n]*')
_STOPS = [".", "!", "?", ";", BOUNDARY]
_TIME = "time"
_IDIOM = "idiom"
# ``<year>`` names a year already over: the past lists use it, and "in 2027 I'll be gone" is not the past.
_PAST_YEARS = [str(year) for year in range(1900, datetime.date.today().year)]
_PAST = "past"
_REPORTED = "reported"
_RECOVERY = "recovery"
_PRESENT = "present"
_FIRST_ONLY = "!first"
_HYPOTHETICAL = "hypothetical"
_BENIGN = "benign"
_SUPPORTING = "supporting:"
_CONTEXTUAL = frozenset({Dimension.means, Dimension.preparation, Dimension.plan, Dimension.attempt})


@dataclass(frozen=True)
class GrammarHit:
    dimensions: tuple[Dimension, ...]
    start: int  # character offsets in the original text
    end: int
    first_token: int
    last_token: int  # exclusive


class _Compiler:
    """Turns the pattern notation into spaCy Matcher token patterns for one language."""

    def __init__(self, grammar: GrammarFile) -> None:
        self.grammar = grammar
        # A gap never jumps a sentence end or a negation: "i am ~2 suicidal" must not match "i'm not suicidal".
        self._gap_stops = sorted({*_STOPS, *(w for cue in grammar.negation.cues for w in self.lemmas(cue))})

    def lemmas(self, word: str) -> list[str]:
        if self.grammar.split_apostrophes and word.endswith("'") and word.count("'") == 1:
            return sorted({word.lower(), lemma_of(word, self.grammar.language)})  # an elided j', l', d'
        tokens = tokenize(word, self.grammar.language, self.grammar.contractions, self.grammar.split_apostrophes)
        if len(tokens) != 1:
            raise ValueError(f"{word!r} is {len(tokens)} words after tokenising; write them as separate elements")
        return sorted({tokens.lemmas[0], tokens.words[0], lemma_of(tokens.words[0], self.grammar.language)})

    def element(self, element: str) -> list[dict[str, Any]]:
        gap = _GAP.match(element)
        if gap:
            return [{"LEMMA": {"NOT_IN": self._gap_stops}, "OP": f"{{0,{gap.group(1)}}}"}]
        optional = element.endswith("?") and len(element) > 1
        body = element[:-1] if optional else element
        spec: dict[str, Any]
        if body == "<year>":
            spec = {"ORTH": {"IN": _PAST_YEARS}}
        elif body == "<num>":
            spec = {"ORTH": {"REGEX": r"^\d{1,3}$"}}
        elif body.startswith("="):
            forms = body.split("|")
            if not all(f.startswith("=") and len(f) > 1 for f in forms):
                raise ValueError(f"{element!r}: exact forms (=word) cannot be mixed with lemmas in one element")
            spec = {"ORTH": {"IN": sorted({f[1:].lower() for f in forms})}}
        else:
            spec = {"LEMMA": {"IN": self._alternatives(element, body)}}
        if optional:
            spec["OP"] = "?"
        return [spec]

    def _alternatives(self, element: str, body: str) -> list[str]:
        words: list[str] = []
        for alternative in body.split("|"):
            if not alternative:
                raise ValueError(f"empty alternative in {element!r}")
            if alternative.isupper() and alternative.replace("_", "").isalpha():
                if alternative not in self.grammar.lexicon:
                    raise ValueError(f"unknown lexicon class {alternative!r}")
                for word in self.grammar.lexicon[alternative]:
                    words += self.lemmas(word)
            else:
                words += self.lemmas(alternative)
        return sorted(set(words))

    def pattern(self, source: str) -> list[dict[str, Any]]:
        elements = source.split()
        if not elements:
            raise ValueError("empty pattern")
        out: list[dict[str, Any]] = []
        for element in elements:
            out += self.element(element)
        if all(spec.get("OP") for spec in out):
            raise ValueError(f"pattern {source!r} can match nothing at all")
        return out


@dataclass(frozen=True)
class _Compiled:
    vocab: Vocab
    risk: AnchoredMatcher  # first pass: a post none of these match in has no risk at all
    supporting: Matcher  # second pass, only beside a risk hit (one Matcher: its keys' order decides ties)
    context: AnchoredMatcher  # second pass too: every context list
    recovery: AnchoredMatcher  # post-level markers, looked for in the whole post
    negators: frozenset[str]
    breakers: frozenset[str]
    first: frozenset[str]
    other: frozenset[str]


def _compile(grammar: GrammarFile, source: str) -> _Compiled:
    vocab = Vocab()
    risk, context, recovery = (AnchoredMatcher(vocab, _STOPS) for _ in range(3))
    supporting = Matcher(vocab, validate=True)
    compiler = _Compiler(grammar)
    problems: list[Problem] = []

    def add(key: str, patterns: Iterable[str], target: AnchoredMatcher | Matcher) -> None:
        compiled: dict[str, list[list[dict[str, Any]]]] = {}
        for text in patterns:
            first_only = text.startswith("@")
            try:
                pattern = compiler.pattern(text.removeprefix("@"))
            except ValueError as exc:
                problems.append(Problem(source, None, key, f"pattern {text!r}: {exc}"))
                continue
            name = key + _FIRST_ONLY if first_only else key
            if isinstance(target, AnchoredMatcher):
                target.add(name, pattern)
            else:
                compiled.setdefault(name, []).append(pattern)
        for name, group in compiled.items():
            supporting.add(name, group)

    for key, patterns in grammar.patterns.items():
        add(key, patterns, risk)
    for key, patterns in grammar.supporting.items():
        add(_SUPPORTING + key, patterns, supporting)
    for key, patterns in (
        (_TIME, grammar.time_words),
        (_BENIGN, grammar.benign),
        (_IDIOM, grammar.idioms),
        (_PAST, grammar.past),
        (_REPORTED, grammar.reported),
        (_PRESENT, grammar.present),
        (_HYPOTHETICAL, grammar.hypothetical),
    ):
        add(key, patterns, context)
    add(_RECOVERY, grammar.recovery, recovery)
    if problems:
        raise RulebookError(problems)

    def lemmas(words: Iterable[str]) -> frozenset[str]:
        return frozenset(lemma for word in words for lemma in compiler.lemmas(word))

    return _Compiled(
        vocab,
        risk.build(),
        supporting,
        context.build(),
        recovery.build(),
        lemmas(grammar.negation.cues),
        lemmas(grammar.negation.breakers),
        lemmas(grammar.person.first),
        lemmas(grammar.person.other),
    )


class CrisisGrammar:
    """One language's grammar, compiled once; ``find`` returns the author's current-risk hits."""

    def __init__(self, grammar: GrammarFile, source: str = "<grammar>", *, compile_now: bool = True) -> None:
        self.file = grammar
        self.language = grammar.language
        self.source = source
        self._lock = threading.Lock()
        self._compiled: _Compiled | None = None
        if compile_now:
            self.compile()

    def compile(self) -> None:
        """Build the matcher (loads the language's lemma dictionary: up to seconds); idempotent and thread-safe."""
        with self._lock:
            if self._compiled is None:
                self._compiled = _compile(self.file, self.source)

    def _ready(self) -> _Compiled:
        if self._compiled is None:
            self.compile()
        assert self._compiled is not None
        return self._compiled

    def tokens(self, text: str | Normalised) -> Tokens:
        return tokenize(text, self.language, self.file.contractions, self.file.split_apostrophes)

    def find(self, source: str | Normalised) -> list[GrammarHit]:
        """Hits in ``source``; pass the post's ``Normalised`` views when you have them (they are not recomputed)."""
        text = source.original if isinstance(source, Normalised) else source
        tokens = self.tokens(source)
        if not tokens.words:
            return []
        compiled = self._ready()
        post = PostDoc(compiled.vocab, tokens)
        raw = compiled.risk.find(post)  # keys in the grammar's order: it decides ties between equal spans
        if not raw:
            return []  # no risk pattern matches anywhere: the context lists have nothing to qualify
        # Context is looked for beside the hits: their sentences and the neighbours (timing looks one sentence away).
        near = {tokens.sentence[start] + d for spans in raw.values() for start, _ in spans for d in (-1, 0, 1)}
        backing = post.match(compiled.supporting, post.runs(near)) if len(compiled.supporting) else {}
        for key, spans in (*backing.items(), *compiled.context.find(post, near).items()):
            raw.setdefault(key, []).extend(spans)
        recovery = len(compiled.recovery) > 0 and bool(compiled.recovery.find(post, post.sentences))
        idioms = raw.pop(_IDIOM, [])
        past = raw.pop(_PAST, [])
        past_sentences = {tokens.sentence[s] for s, _ in past}
        reported_sentences = {tokens.sentence[s] for s, _ in raw.pop(_REPORTED, [])}
        # A present cue inside a past one is part of it: "ten years ago *this week*", "two years ago *today*".
        present = [(s, e) for s, e in raw.pop(_PRESENT, []) if not any(ps <= s and e <= pe for ps, pe in past)]
        present_sentences = {tokens.sentence[s] for s, _ in present}
        if recovery:
            # Told from recovery: only sentences that say "now", "again", "tonight"... are current.
            past_sentences |= set(tokens.sentence)
        past_sentences -= present_sentences  # "years ago I cut, and I cut again last night" is current
        # A programme or a study "this morning" is still someone else's words: "now" does not undo reporting.
        past_sentences |= reported_sentences
        hypothetical = raw.pop(_HYPOTHETICAL, [])
        times = raw.pop(_TIME, [])
        benign_sentences = {tokens.sentence[s] for s, _ in raw.pop(_BENIGN, [])}
        quoted = [(m.start(), m.end()) for m in _QUOTES.finditer(text)]
        hits: list[GrammarHit] = []
        supporting: list[GrammarHit] = []
        for key, spans in raw.items():
            first_only = key.endswith(_FIRST_ONLY)
            dimensions = tuple(Dimension(d) for d in key.removeprefix(_SUPPORTING).removesuffix(_FIRST_ONLY).split("+"))
            target = supporting if key.startswith(_SUPPORTING) else hits
            for start, end in _longest(spans):
                if self._cancelled(tokens, start, end, dimensions, idioms, past_sentences, hypothetical, quoted):
                    continue
                if _past_clause(tokens, start, end, past, present):
                    continue
                if first_only and not self._names_author(tokens, start, end):
                    continue
                if tokens.sentence[start] in benign_sentences and set(dimensions) <= _CONTEXTUAL:
                    continue
                target.append(GrammarHit(dimensions, tokens.starts[start], tokens.ends[end - 1], start, end))
        if hits:
            hits += supporting
            hits += self._timing(tokens, times, hits, idioms, quoted)
        return sorted(hits, key=lambda h: (h.start, h.end))

    def signals(self, text: str | Normalised, field: str) -> list[RiskSignal]:
        return [
            RiskSignal(dimension=d, source="grammar", field=field, start=h.start, end=h.end, language=self.language)
            for h in self.find(text)
            for d in h.dimensions
        ]

    def _cancelled(
        self,
        tokens: Tokens,
        start: int,
        end: int,
        dimensions: tuple[Dimension, ...],
        idioms: list[tuple[int, int]],
        past_sentences: set[int],
        hypothetical: list[tuple[int, int]],
        quoted: list[tuple[int, int]],
    ) -> bool:
        if any(s < end and start < e for s, e in idioms):
            return True
        if any(qs <= tokens.starts[start] and tokens.ends[end - 1] <= qe for qs, qe in quoted):
            return True
        if tokens.sentence[start] in past_sentences:
            return True
        clause = _clause_start(tokens, start)
        if any(clause <= s < start or (s < start < e) for s, e in hypothetical):
            return True
        if self._negated(tokens.lemmas[max(clause, start - self.file.negation.window) : start]):
            return True
        if Dimension.concern_other in dimensions:
            return False
        inside = set(tokens.lemmas[start:end])
        if inside & self._ready().first:
            return False
        lookback = tokens.lemmas[max(clause, start - self.file.person.window) : start]
        for lemma in reversed(lookback):
            if lemma in self._ready().first:
                return False
            if lemma in self._ready().other:
                return True
        return False

    def _names_author(self, tokens: Tokens, start: int, end: int) -> bool:
        clause = _clause_start(tokens, start)
        return any(lemma in self._ready().first for lemma in tokens.lemmas[clause : _clause_end(tokens, end)])

    def _negated(self, window: tuple[str, ...]) -> bool:
        """A cue negates the hit unless a breaker stands between ("can't *stop* thinking about...")."""
        for i, lemma in enumerate(window):
            if lemma in self._ready().negators and not any(w in self._ready().breakers for w in window[i + 1 :]):
                return True
        return False

    def _timing(
        self,
        tokens: Tokens,
        times: list[tuple[int, int]],
        hits: list[GrammarHit],
        idioms: list[tuple[int, int]],
        quoted: list[tuple[int, int]],
    ) -> list[GrammarHit]:
        """A bare time word counts as timing when risk is named in its sentence or the one beside it."""
        near = {tokens.sentence[h.first_token] + d for h in hits for d in (-1, 0, 1) if set(h.dimensions) - {Dimension.hopelessness}}
        out = []
        for start, end in _longest(times):
            if tokens.sentence[start] not in near or any(s < end and start < e for s, e in idioms):
                continue
            if any(qs <= tokens.starts[start] < qe for qs, qe in quoted):
                continue
            out.append(GrammarHit((Dimension.timing,), tokens.starts[start], tokens.ends[end - 1], start, end))
        return out


def _past_clause(tokens: Tokens, start: int, end: int, past: list[tuple[int, int]], present: list[tuple[int, int]]) -> bool:
    """A hit whose own clause names the past and nothing current is past, whatever the rest of its sentence says.

    "I tried to kill myself when I was 20, and I'm 31 now": the sentence says "now", the hit's clause
    does not. A present cue in the hit's clause ("I tried again last night") keeps it current.
    """
    first, last = _clause_start(tokens, start), _clause_end(tokens, end)

    def inside(spans: list[tuple[int, int]]) -> bool:
        return any(first <= s and e <= last for s, e in spans)

    return inside(past) and not inside(present)


def _clause_end(tokens: Tokens, index: int) -> int:
    i = index
    while i < len(tokens) and tokens.words[i] not in CLAUSE_BREAKS:
        i += 1
    return i


def _clause_start(tokens: Tokens, index: int) -> int:
    i = index
    while i > 0 and tokens.words[i - 1] not in CLAUSE_BREAKS:
        i -= 1
    return i


def _longest(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop spans contained in a longer span of the same key (optional elements make many)."""
    ordered = sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int]] = []
    for start, end in ordered:
        if any(ks <= start and end <= ke for ks, ke in kept):
            continue
        kept.append((start, end))
    return kept


class _NoDuplicateKeys(yaml.SafeLoader):
    """A repeated key would silently replace the first one's patterns; refuse it instead."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _load_one(path: Path, compile_now: bool = True) -> CrisisGrammar:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoDuplicateKeys)  # a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        what = getattr(exc, "problem", None) or exc.__class__.__name__
        raise RulebookError([Problem(str(path), line + 1 if line is not None else None, None, f"cannot read: {what}")]) from exc
    try:
        grammar = GrammarFile.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(str(path), None, ".".join(str(p) for p in err["loc"]) or None, err["msg"]) for err in exc.errors()]
        raise RulebookError(problems) from exc
    if path.stem != grammar.language:
        raise RulebookError([Problem(str(path), None, None, f"file name must be {grammar.language}.yaml")])
    return CrisisGrammar(grammar, str(path), compile_now=compile_now)


def load_grammars(folder: Path, compile_now: Iterable[str] | None = None) -> Mapping[str, CrisisGrammar]:
    """Every ``<language>.yaml`` in ``folder``; any invalid file refuses the whole set.

    ``compile_now`` names the languages to compile at once (default: all); the others compile on first
    use or in ``CrisisDetector.warm`` (compiling loads a lemma dictionary, up to seconds for Polish).
    """
    loaded = load_each(sorted(folder.glob("*.yaml")), lambda path: _load_one(path, compile_now is None or path.stem in set(compile_now)))
    return {grammar.language: grammar for grammar in loaded}
