"""Words of a post with lemmas and a map back to where the author wrote them.

Matching runs on the normalised (folded) view, so homoglyphs, leetspeak and zero-width tricks
are already undone; lemmas come from ``simplemma`` (54 languages, dictionaries inside the wheel),
taken from the author's own spelling where only accents differ, so ``pastillas`` and ``umrzeć``
lemmatise as written. Letter-spaced words (``s u i c i d e``, ``k.m.s``) are joined back.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import regex
import simplemma

from moderation_service.core.normalise import Normalised, normalise

__all__ = ["BOUNDARY", "CLAUSE_BREAKS", "Tokens", "lemma_of", "strip_accents", "tokenize"]

BOUNDARY = "<s>"  # a synthetic token between sentences (also for line breaks)
_SENTENCE_END = frozenset({".", "!", "?", ";", BOUNDARY})
CLAUSE_BREAKS = frozenset({",", ":", "(", ")", "-", "–", "—", "but", "pero", "mais", "aber", "ma", "mas", "ale", "ond", *_SENTENCE_END})
# ``regex``, not ``re2``: this runs once per post and re2's Python wrapper costs microseconds per match; the
# pattern is linear either way. The classes are re2's ``[\pL\pN]`` and ``\s`` (ASCII whitespace): the two
# engines disagree only on code points unassigned in Python's Unicode tables, which ``normalise`` drops from
# the folded view this reads (tests/test_token_regex.py checks both over every code point).
_WORD = regex.compile(r"[\p{L}\p{N}]+(?:[*'’][\p{L}\p{N}]+)*|[^\p{L}\p{N}\t\n\f\r ]")
_SPACED_GLUE = frozenset({".", "-", "_", "*"})
_HYPHENS = frozenset({"-", "‐", "‑"})


def strip_accents(text: str) -> str:
    if text.isascii():  # NFD leaves ASCII as it is and it has no marks: the common case, once per word of a post
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


@lru_cache(maxsize=200_000)
def lemma_of(word: str, language: str) -> str:
    """The accent-free, lower-case lemma of one word (the word itself when simplemma knows none)."""
    lowered = unicodedata.normalize("NFC", word.casefold()).replace("’", "'")
    try:
        lemma = simplemma.lemmatize(lowered, lang=language)
    except ValueError:  # a language simplemma does not know: match on the word itself
        lemma = lowered
    return strip_accents(lemma.casefold())


@dataclass(frozen=True)
class Tokens:
    """Parallel lists: the word matched, its lemma, and its ``[start, end)`` in the original text."""

    words: tuple[str, ...]
    lemmas: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    sentence: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)


def _raw_tokens(source: str | Normalised) -> list[tuple[str, str, int, int]]:
    """(folded word, original spelling, start, end) for each word or punctuation mark, with line breaks as boundaries."""
    normalised = source if isinstance(source, Normalised) else normalise(source)
    original, view = normalised.original, normalised.folded
    out: list[tuple[str, str, int, int]] = []
    last_end = 0
    matches = list(_WORD.finditer(view.text))
    for i, match in enumerate(matches):
        if match.group() in _HYPHENS and 0 < i < len(matches) - 1:
            before, after = matches[i - 1], matches[i + 1]
            if before.end() == match.start() and after.start() == match.end() and before.group()[-1].isalnum():
                continue  # self-harm, co-codamol, matar-me: the parts are words, the hyphen is not
        start, end = view.original_span(match.start(), match.end())
        if "\n" in original[last_end:start] and out:
            out.append((BOUNDARY, "", start, start))
        out.append((match.group().replace("’", "'"), original[start:end], start, end))
        last_end = end
    return out


def _join_spaced(raw: list[tuple[str, str, int, int]]) -> list[tuple[str, str, int, int]]:
    """``s u i c i d e`` / ``k.m.s`` -> one word, when four or more single letters stand in a row."""
    out: list[tuple[str, str, int, int]] = []
    i = 0
    while i < len(raw):
        j, letters = i, []
        while j < len(raw) and len(raw[j][0]) == 1 and raw[j][0].isalpha():
            letters.append(j)
            nxt = j + 1
            if nxt < len(raw) and raw[nxt][0] in _SPACED_GLUE and nxt + 1 < len(raw) and len(raw[nxt + 1][0]) == 1:
                nxt += 1
            j = nxt
        if len(letters) >= 4:
            word = "".join(raw[k][0] for k in letters)
            start, end = raw[letters[0]][2], raw[letters[-1]][3]
            out.append((word, word, start, end))
            i = letters[-1] + 1
            continue
        out.append(raw[i])
        i += 1
    return out


def _split_apostrophe(word: str) -> list[str]:
    head, _, tail = word.partition("'")
    return [f"{head}'", *_split_apostrophe(tail)] if tail else [word]


def tokenize(original: str | Normalised, language: str, contractions: Mapping[str, str], split_apostrophes: bool = False) -> Tokens:
    """The words of ``original`` ready for the matcher; contractions (``can't`` -> ``can not``) expanded."""
    words: list[str] = []
    lemmas: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    sentence: list[int] = []
    current = 0
    for folded, spelt, start, end in _join_spaced(_raw_tokens(original)):
        own = spelt if strip_accents(spelt.casefold()).replace("’", "'") == folded else folded
        parts = contractions.get(folded)
        if not parts and split_apostrophes and "'" in folded.strip("'"):
            parts = " ".join(_split_apostrophe(folded))
        pieces = parts.split() if parts else [folded]
        for piece in pieces:
            words.append(piece)
            lemmas.append(piece if piece in _SENTENCE_END or not piece[0].isalnum() else lemma_of(own if not parts else piece, language))
            starts.append(start)
            ends.append(end)
            sentence.append(current)
        if folded in _SENTENCE_END:
            current += 1
    return Tokens(tuple(words), tuple(lemmas), tuple(starts), tuple(ends), tuple(sentence))
