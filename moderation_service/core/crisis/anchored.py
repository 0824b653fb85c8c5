"""spaCy Matcher patterns split by anchor word, so a post is matched only against patterns it could match.

spaCy's Matcher tries every pattern at every token, and its ``IN`` sets are Python calls, so one Matcher
holding a grammar's hundreds of patterns costs milliseconds per post. Patterns are grouped by their rarest
required word set (the anchor); a group runs only over sentences that hold one of its anchor words and a
word for every required element of one of its patterns, on spans of one ``Doc`` per post. The matches are
the ones the whole Matcher would find over the same sentences.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from moderation_service.core.crisis.tokens import Tokens

__all__ = ["AnchoredMatcher", "Pattern", "PostDoc", "Spans"]

Pattern = list[dict[str, Any]]
Spans = dict[str, list[tuple[int, int]]]  # match key -> token spans [start, end)
_Need = tuple[tuple[str, frozenset[str]], ...]  # (attribute, words) of each required element of one pattern

# Words too common to tell a sentence apart; a pattern's anchor is chosen among its other words.
_COMMON = frozenset(
    "i me my myself a an the to of in on at and or but be am is are was were been do does did not no have has had it its this that "
    "for with all so just can will would get got go going want up out off now here there what when how any one them they he she his "
    "her their your you we our us by from as if".split()
)


class PostDoc:
    """One post's tokens for one grammar's vocabulary: sentence edges, word sets and the ``Doc``, each built once."""

    def __init__(self, vocab: Vocab, tokens: Tokens) -> None:
        self.vocab = vocab
        self.tokens = tokens
        self.edges = [0, *(i for i in range(1, len(tokens)) if tokens.sentence[i] != tokens.sentence[i - 1]), len(tokens)]
        self._doc: Doc | None = None
        self._sets: dict[tuple[int, int], tuple[set[str], set[str]]] = {}

    @property
    def sentences(self) -> set[int]:
        return set(range(len(self.edges) - 1))

    @property
    def doc(self) -> Doc:
        if self._doc is None:
            self._doc = Doc(self.vocab, words=list(self.tokens.words), lemmas=list(self.tokens.lemmas))
        return self._doc

    def words(self, run: tuple[int, int]) -> tuple[set[str], set[str]]:
        """The lemmas and the word forms of a run of sentences."""
        if run not in self._sets:
            start, end = self.edges[run[0]], self.edges[run[1]]
            self._sets[run] = set(self.tokens.lemmas[start:end]), set(self.tokens.words[start:end])
        return self._sets[run]

    def runs(self, sentences: Iterable[int]) -> list[tuple[int, int]]:
        """Sentences as runs ``[first, last)`` of consecutive ones (numbers outside the post dropped)."""
        runs: list[list[int]] = []
        for sentence in sorted(s for s in set(sentences) if 0 <= s < len(self.edges) - 1):
            if runs and runs[-1][1] == sentence:
                runs[-1][1] = sentence + 1
            else:
                runs.append([sentence, sentence + 1])
        return [(first, last) for first, last in runs]

    def match(self, matcher: Matcher, runs: Iterable[tuple[int, int]]) -> Spans:
        """``matcher`` over each run alone (a span of the one ``Doc``); spans index the post's tokens.

        Nothing matches across two runs, as in a ``Doc`` of the runs with a sentence boundary between them
        (no pattern element matches one), so each run alone finds the same.
        """
        found: Spans = {}
        for first, last in runs:
            offset = self.edges[first]
            for match_id, start, end in matcher(self.doc[offset : self.edges[last]]):
                found.setdefault(self.vocab.strings[match_id], []).append((offset + start, offset + end))
        return found


def _anchor(pattern: Pattern) -> tuple[str, frozenset[str]]:
    """The required word set a sentence must contain for this pattern to match in it (the rarest one)."""
    best: tuple[int, str, frozenset[str]] | None = None
    for spec in pattern:
        if spec.get("OP"):
            continue
        for attribute in ("LEMMA", "ORTH"):
            values = spec.get(attribute, {})
            if isinstance(values, dict) and "IN" in values:
                words = frozenset(values["IN"])
                rank = len(words) + (10_000 if words & _COMMON else 0)
                if best is None or rank < best[0]:
                    best = (rank, attribute, words)
    return (best[1], best[2]) if best else ("", frozenset())


def _needs(pattern: Pattern) -> tuple[tuple[str, frozenset[str]], ...]:
    """The word sets of a pattern's required (not optional) elements: a match holds a word of each."""
    out = []
    for spec in pattern:
        if spec.get("OP"):
            continue
        for attribute in ("LEMMA", "ORTH"):
            values = spec.get(attribute)
            if isinstance(values, dict) and "IN" in values:
                out.append((attribute, frozenset(values["IN"])))
    return tuple(out)


def _may_match(spec: dict[str, Any], stops: Collection[str]) -> bool:
    """Whether a pattern element could match one of ``stops`` (the grammar builds its gaps never to)."""
    for attribute in ("LEMMA", "ORTH"):
        values = spec.get(attribute)
        if isinstance(values, dict):
            if "IN" in values and set(values["IN"]) & set(stops):
                return True
            if "NOT_IN" in values and not set(stops) <= set(values["NOT_IN"]):
                return True
            if "REGEX" in values and any(re.search(values["REGEX"], stop) for stop in stops):
                return True
        elif values is not None and values in stops:
            return True
    return False


@dataclass(frozen=True)
class _Group:
    """Patterns that share an anchor: they can only match in a sentence holding one of its words."""

    attribute: str  # "LEMMA" or "ORTH" ("" with no anchor: every sentence)
    words: frozenset[str]
    matcher: Matcher
    needs: tuple[_Need, ...]  # per pattern
    crosses: bool  # some element can match a sentence end, so a match may span sentences

    def can_match(self, words: tuple[set[str], set[str]]) -> bool:
        lemmas, forms = words
        return any(all(not found.isdisjoint(lemmas if attr == "LEMMA" else forms) for attr, found in need) for need in self.needs)


class AnchoredMatcher:
    """Named patterns (``add``, then ``find``); the groups keep the order patterns were added in."""

    def __init__(self, vocab: Vocab, stops: Collection[str]) -> None:
        self.vocab = vocab
        self._stops = tuple(stops)  # tokens that end a sentence
        self._pending: dict[tuple[str, frozenset[str]], dict[str, list[Pattern]]] = {}
        self._groups: tuple[_Group, ...] = ()
        self._by_lemma: dict[str, tuple[int, ...]] = {}
        self._by_form: dict[str, tuple[int, ...]] = {}
        self._unanchored: tuple[int, ...] = ()

    def __len__(self) -> int:
        return sum(len(group.needs) for group in self._groups) + sum(len(p) for named in self._pending.values() for p in named.values())

    def add(self, name: str, pattern: Pattern) -> None:
        self._pending.setdefault(_anchor(pattern), {}).setdefault(name, []).append(pattern)

    def build(self) -> AnchoredMatcher:
        """One spaCy Matcher per anchor (validated), and the index from anchor words to groups."""
        groups: list[_Group] = []
        index: dict[str, dict[str, list[int]]] = {"LEMMA": {}, "ORTH": {}, "": {}}
        for (attribute, words), named in self._pending.items():
            matcher = Matcher(self.vocab, validate=True)
            for name, patterns in named.items():
                matcher.add(name, patterns)
            for word in words:
                index[attribute].setdefault(word, []).append(len(groups))
            listed = [pattern for patterns in named.values() for pattern in patterns]
            crosses = any(_may_match(spec, self._stops) for pattern in listed for spec in pattern)
            groups.append(_Group(attribute, words, matcher, tuple(_needs(p) for p in listed), crosses))
        self._groups = tuple(groups)
        self._by_lemma = {word: tuple(found) for word, found in index["LEMMA"].items()}
        self._by_form = {word: tuple(found) for word, found in index["ORTH"].items()}
        self._unanchored = tuple(i for i, group in enumerate(groups) if not group.words)
        self._pending = {}
        return self

    def find(self, post: PostDoc, within: set[int] | None = None) -> Spans:
        """Matches in ``post``, keys in group order; ``within``: only in these sentences (runs of them).

        A group whose elements cannot match a sentence end searches each sentence holding an anchor word
        alone. One that can searches the runs of ``within``, or without it the runs of its anchor sentences.
        """
        tokens = post.tokens
        anchored: dict[int, set[int]] = {}
        for word, lemma, sentence in zip(tokens.words, tokens.lemmas, tokens.sentence, strict=True):
            if within is None or sentence in within:
                for member in (*self._by_lemma.get(lemma, ()), *self._by_form.get(word, ())):
                    anchored.setdefault(member, set()).add(sentence)
        everywhere = post.sentences if within is None else within
        for member in self._unanchored:
            anchored[member] = everywhere
        found: Spans = {}
        for index in sorted(anchored):
            group = self._groups[index]
            if group.crosses:
                runs = post.runs(anchored[index] if within is None or not group.words else within)
            else:
                runs = [(s, s + 1) for s in sorted(anchored[index]) if 0 <= s < len(post.edges) - 1]
            worth = [run for run in runs if group.can_match(post.words(run))]
            for key, spans in post.match(group.matcher, worth).items():
                found.setdefault(key, []).extend(spans)
        return found
