"""``normalise`` visits only the characters its regexes find; the views are those of the per-character loops it had.

The loops below are the ones ``normalise`` used before the issue #14 work, kept as the reference: the fast
version must give the same folded and squeezed views (text and offsets) for every corpus post and for
arbitrary text, leet and letter-spacing included.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation_service.core import normalise as module
from moderation_service.core.normalise import Normalised, TextView, normalise
from tests.equivalence_corpus import corpus

_LEET = module._LEET


def _reference_undo_leet(chars: list[str]) -> None:
    n, i = len(chars), 0
    while i < n:
        if not (module._is_letter(chars[i]) or chars[i] in _LEET):
            i += 1
            continue
        j = i
        while j < n and (module._is_letter(chars[j]) or chars[j] in _LEET):
            j += 1
        token = chars[i:j]
        letters = [k for k, c in enumerate(token) if module._is_letter(c)]
        if len(letters) >= 2:
            first, last = letters[0], letters[-1]
            for k, c in enumerate(token):
                if c in _LEET and not module._is_letter(c) and (first < k < last or (k == 0 and first == 1)):
                    chars[i + k] = _LEET[c]
        i = j


def _reference_single(chars: list[str], i: int) -> bool:
    return (
        chars[i].isascii()
        and chars[i].isalnum()
        and (i == 0 or not chars[i - 1].isalnum())
        and (i + 1 == len(chars) or not chars[i + 1].isalnum())
    )


def _reference_spaced_runs(chars: list[str]) -> list[list[int]]:
    """The old finder (every character tested); the runs are built by the code both versions share."""
    return module._glued_runs(chars, (i for i in range(len(chars)) if _reference_single(chars, i)))


def _reference(original: str) -> Normalised:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(original):
        for folded in module._fold_char(char):
            chars.append(folded)
            starts.append(index)
            ends.append(index + 1)
    fast_runs = module._spaced_runs
    try:
        module._spaced_runs = _reference_spaced_runs
        module._join_spaced(chars, starts, ends)
    finally:
        module._spaced_runs = fast_runs
    _reference_undo_leet(chars)
    view = TextView("".join(chars), tuple(starts), tuple(ends))
    return Normalised(original, view, module._squeeze(view))


def test_isalnum_is_the_regex_class_the_fast_loops_use() -> None:
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    assert set(re.findall(r"[^\W_]", every)) == {c for c in every if c.isalnum()}


def test_every_corpus_post_gets_the_reference_views() -> None:
    count = 0
    for post in corpus():
        for text in (post.text, post.title or ""):
            assert normalise(text) == _reference(text), text
            count += 1
    assert count > 6000


@pytest.mark.parametrize(
    "text",
    ["1a b c d", "x9 a b c", "ü a b c d", "a_b c d e", "², a b c", "k1ll y0u n00b $hit", "!a!b |1|", "a 1 b 2 c 3", "i d i o t",
     "i.d.i.o.t", "you are a s c r o u n g e r", "s-c-r-o-u-n-g-e-r", "y o u  i d i o t", "ǅ a b c", "Ⅻ a b c", "a\u200bb c d"],
)  # fmt: skip
def test_edge_cases_fold_as_the_reference(text: str) -> None:
    assert normalise(text) == _reference(text)


@given(st.text(alphabet=st.sampled_from("abc k1l$h!t|+ 02@.-_*/IDOT s\u200bé²\n\tＫ"), max_size=80) | st.text(max_size=120))
@settings(max_examples=1500, deadline=None)
def test_leet_and_letter_spacing_fold_as_the_reference(text: str) -> None:
    assert normalise(text) == _reference(text)
