"""Fold what an author wrote into forms that rules can match, without losing where it came from.

Two views are produced, both with a map back to the original character offsets so that every
reason can point at the span the author actually wrote:

- ``folded``: NFKC, accents and zero-width/control characters removed, case-folded, homoglyphs
  folded to Latin (Unicode's confusables table, via ``confusable_homoglyphs``), and leetspeak
  inside words undone (``k1ll`` -> ``kill``, ``$hit`` -> ``shit``), and letter-spaced or punctuated
  words joined (``i d i o t``, ``i.d.i.o.t``, ``s-c-r-o-u-n-g-e-r`` -> ``idiot``, ``scrounger``; two
  spaces still part words: ``y o u  i d i o t`` -> ``you  idiot``). Regex rules match here.
- ``squeezed``: ``folded`` with runs of one letter collapsed to one (``kiiiill`` -> ``kil``).
  Phrase rules are squeezed the same way when compiled, so ``kill`` still finds ``kiiiill``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

__all__ = ["Normalised", "TextView", "fold_phrase", "normalise"]

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"}
_DROPPED_CATEGORIES = {"Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me"}
_SPACING_GLUE = frozenset(" .-_*/")  # one of these between single letters spells a word out
# Text-speak pairs of one-letter words ("u r" = you are, "r u" = are you) that start a spaced run but are no spelling.
_TEXT_SPEAK = frozenset({("u", "r"), ("r", "u")})
# The loops below visit only what these find (stdlib ``re``, linear: single character classes), not every
# character: a word of ASCII letters and leet symbols, and a lone ASCII letter or digit. ``[^\W_]`` is
# ``str.isalnum`` (both are CPython's Py_UNICODE_ISALNUM; tests/test_normalise.py checks every code point).
_LEET_RUN = re.compile("[A-Za-z" + re.escape("".join(_LEET)) + "]+")
_LONE = re.compile(r"(?<![^\W_])[A-Za-z0-9](?![^\W_])")


@dataclass(frozen=True)
class TextView:
    """A transformed text; ``starts[i]:ends[i]`` is where its character ``i`` came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of this view back to the original text."""
        if end <= start or not self.text:
            anchor = self.starts[start] if start < len(self.starts) else (self.ends[-1] if self.ends else 0)
            return anchor, anchor
        return self.starts[start], self.ends[end - 1]


@dataclass(frozen=True)
class Normalised:
    original: str
    folded: TextView
    squeezed: TextView


@cache
def _confusable_map() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letter or digit it is drawn like (Unicode confusables)."""
    from confusable_homoglyphs.confusables import confusables_data

    folded: dict[str, str] = {}
    for char, entries in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for entry in entries:
            target = entry["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                folded[char] = target.lower()
                break
    return folded


@cache
def _fold_char(char: str) -> str:
    """What one original character becomes in the folded view (possibly nothing)."""
    if char in "\n\r\t" or unicodedata.category(char) in {"Zs", "Zl", "Zp"}:
        return " "
    out = []
    for piece in unicodedata.normalize("NFKC", char):
        for part in unicodedata.normalize("NFD", piece):
            if unicodedata.category(part) in _DROPPED_CATEGORIES:
                continue
            if part.isspace():
                out.append(" ")
                continue
            lowered = part.casefold()
            out.append("".join(_confusable_map().get(c, c) for c in lowered))
    return "".join(out)


def _is_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _undo_leet(chars: list[str]) -> None:
    """Replace leet symbols in place where a word clearly surrounds them (k1ll, $hit, n00b).

    ``chars`` holds one character per item, so offsets in their join are offsets in ``chars``.
    """
    for run in _LEET_RUN.finditer("".join(chars)):
        token = run.group()
        if token.isalpha():  # letters only: nothing to undo (most words)
            continue
        i = run.start()
        letters = [k for k, c in enumerate(token) if _is_letter(c)]
        if len(letters) >= 2:
            first, last = letters[0], letters[-1]
            for k, c in enumerate(token):
                if c not in _LEET or _is_letter(c):
                    continue
                inside = first < k < last
                leading = k == 0 and first == 1 and len(letters) >= 2
                if inside or leading:
                    chars[i + k] = _LEET[c]


def _spaced_runs(chars: list[str]) -> list[list[int]]:
    """Positions of runs of lone characters joined by one glue character each (``i d i o t``, ``i.d.i.o.t``)."""
    return _glued_runs(chars, (lone.start() for lone in _LONE.finditer("".join(chars))))


def _glued_runs(chars: list[str], lone: Iterable[int]) -> list[list[int]]:
    """The runs of two or more ``lone`` positions (ascending) joined by one glue character each."""
    runs: list[list[int]] = []
    run: list[int] = []
    for i in lone:
        if run and i == run[-1] + 2 and chars[run[-1] + 1] in _SPACING_GLUE:
            run.append(i)
            continue
        if len(run) >= 2:
            runs.append(run)
        run = [i]
    if len(run) >= 2:
        runs.append(run)
    return runs


def _after_word(chars: list[str], i: int) -> bool:
    """Whether position ``i`` follows a word of two or more letters and one space."""
    return i >= 3 and chars[i - 1] == " " and chars[i - 2].isalnum() and chars[i - 3].isalnum()


def _join_spaced(chars: list[str], starts: list[int], ends: list[int]) -> None:
    """Drop the glue inside spelt-out words, in place; a run of two counts only beside a longer one."""
    runs = _spaced_runs(chars)
    long_ends = {run[0] for run in runs if len(run) >= 3} | {run[-1] for run in runs if len(run) >= 3}
    drop: set[int] = set()
    for run in runs:
        texting = False
        while len(run) >= 2 and chars[run[0] + 1] == " " and (chars[run[0]], chars[run[1]]) in _TEXT_SPEAK:
            run, texting = run[2:], True  # "u r a moron": "you are", not a word spelt out
        if len(run) >= 4 and chars[run[0]] == "a" and chars[run[0] + 1] == " " and (texting or _after_word(chars, run[0])):
            run = run[1:]  # "you are a s c r o u n g e r": the article stays a word of its own
        if len(run) < 2:
            continue
        near = any(p in long_ends for p in range(run[0] - 4, run[0])) or any(p in long_ends for p in range(run[-1] + 1, run[-1] + 5))
        letters = sum(chars[p].isalpha() for p in run)
        if letters >= 2 and (len(run) >= 3 or near):
            drop.update(p + 1 for p in run[:-1])
    for i in sorted(drop, reverse=True):
        del chars[i], starts[i], ends[i]


def _squeeze(view: TextView) -> TextView:
    text: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for char, start, end in zip(view.text, view.starts, view.ends, strict=True):
        if text and char == text[-1] and (char.isalpha() or char == " "):
            ends[-1] = end
            continue
        text.append(char)
        starts.append(start)
        ends.append(end)
    return TextView("".join(text), tuple(starts), tuple(ends))


def normalise(original: str) -> Normalised:
    """Both matching views of ``original``; never raises on any string."""
    folds = [_fold_char(char) for char in original]
    chars: list[str]
    starts: list[int]
    ends: list[int]
    if all(len(folded) == 1 for folded in folds):  # one character each (most text): offsets are positions
        chars, starts, ends = folds, list(range(len(folds))), list(range(1, len(folds) + 1))
    else:
        chars, starts, ends = [], [], []
        for index, folded in enumerate(folds):
            for piece in folded:
                chars.append(piece)
                starts.append(index)
                ends.append(index + 1)
    _join_spaced(chars, starts, ends)
    _undo_leet(chars)
    folded_view = TextView("".join(chars), tuple(starts), tuple(ends))
    return Normalised(original, folded_view, _squeeze(folded_view))


def fold_phrase(phrase: str) -> str:
    """A rule phrase in the squeezed form the text is matched in, so both sides fold alike."""
    return normalise(phrase).squeezed.text.strip()
