"""The crisis tokeniser and the language detector read text faster (regex, not re2; ASCII left as it is) and alike.

``regex`` is faster here only because re2's Python wrapper builds every match in Python; both engines run
the same character classes, but their Unicode tables differ in age. These tests hold the swap to re2's
answers: over every code point (where the classes may disagree, the text never holds such a character),
and over every post of the equivalence corpus.
"""

from __future__ import annotations

import sys
import unicodedata

import re2
import regex

from moderation_service.core.crisis import language as language_module
from moderation_service.core.crisis import tokens as tokens_module
from moderation_service.core.normalise import normalise
from tests.equivalence_corpus import corpus

# What the two modules used before, in re2.
_RE2_WORD = re2.compile(r"[\pL\pN]+(?:[*'’][\pL\pN]+)*|[^\pL\pN\s]")
_RE2_WORDS = re2.compile(r"[\pL']+")
_EVERY_CHARACTER = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)


def _members(pattern: str, engine: object) -> set[str]:
    """The characters one single-character class matches, read off every code point at once."""
    return set(engine.compile(pattern).findall(_EVERY_CHARACTER))  # type: ignore[attr-defined]


def test_where_the_engines_classes_disagree_the_folded_view_never_holds_the_character() -> None:
    disagree = set()
    for in_re2, in_regex in (
        (r"[\pL\pN]", r"[\p{L}\p{N}]"),
        (r"[^\pL\pN\s]", r"[^\p{L}\p{N}\t\n\f\r ]"),
    ):
        disagree |= _members(in_re2, re2) ^ _members(in_regex, regex)
    # Each is unassigned in Python's Unicode tables, so normalise drops it (and folding never produces one).
    assert all(unicodedata.category(c) == "Cn" for c in disagree)
    assert all(normalise(f"a{c}b").folded.text == "ab" for c in disagree)
    ascii_words = _members(r"[\pL']", re2) ^ _members(r"[\p{L}']", regex)
    assert not any(c.isascii() for c in ascii_words)


def test_the_tokeniser_finds_re2s_words_in_every_corpus_post() -> None:
    checked = 0
    for post in corpus():
        for text in (post.text, post.title or ""):
            view = normalise(text).folded.text
            expected = [(m.start(), m.end()) for m in _RE2_WORD.finditer(view)]
            assert [(m.start(), m.end()) for m in tokens_module._WORD.finditer(view)] == expected, text
            lowered = text.lower()
            if lowered.isascii():
                assert language_module._ASCII_WORDS.findall(lowered) == _RE2_WORDS.findall(lowered), text
                checked += 1
    assert checked > 5000


def test_the_tokeniser_splits_like_re2_on_tricky_text() -> None:
    text = "s-e-l-f—harm… I'm\u00a0done\tnow 2nite ’til k*ll ½ ² ⅻ 𝟘 ǅ ﬁ ー 々 ٣"
    view = normalise(text).folded.text
    assert [m.group() for m in tokens_module._WORD.finditer(view)] == _RE2_WORD.findall(view)
    assert [m.group() for m in tokens_module._WORD.finditer(text)] == _RE2_WORD.findall(text)


def test_accents_are_stripped_as_nfd_does_and_ascii_is_left_as_it_is() -> None:
    for text in ("pastillas", "umrzeć", "ÉCOLE", "naïve café", "k*ll", "", "Straße", "e\u0301"):
        slow = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        assert tokens_module.strip_accents(text) == slow
