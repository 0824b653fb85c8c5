from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation_service.core.normalise import fold_phrase, normalise


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_never_raises_and_offsets_stay_inside_the_original(text: str) -> None:
    norm = normalise(text)
    for view in (norm.folded, norm.squeezed):
        assert len(view.text) == len(view.starts) == len(view.ends)
        for start, end in zip(view.starts, view.ends, strict=True):
            assert 0 <= start < end <= len(text)
        if view.text:
            start, end = view.original_span(0, len(view.text))
            assert 0 <= start <= end <= len(text)


@given(st.text(max_size=200), st.integers(0, 250), st.integers(0, 250))
@settings(max_examples=300, deadline=None)
def test_any_span_maps_back_inside_the_original(text: str, a: int, b: int) -> None:
    view = normalise(text).squeezed
    start, end = sorted((min(a, len(view.text)), min(b, len(view.text))))
    lo, hi = view.original_span(start, end)
    assert 0 <= lo <= hi <= len(text)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("K1LL y0urself", "kill yourself"),
        ("$h1t", "shit"),
        ("pаypal", "paypal"),  # Cyrillic а
        ("you i\u200bdiot", "you idiot"),
        ("ｆｕｃｋ", "fuck"),
        ("Café", "cafe"),
        ("100mg of b12 and covid19", "100mg of b12 and covid19"),
        ("idiot!", "idiot!"),
    ],
)
def test_folding(text: str, folded: str) -> None:
    assert normalise(text).folded.text == folded


def test_letter_runs_collapse_for_matching() -> None:
    assert normalise("kiiiiilllll").squeezed.text == fold_phrase("kill") == "kil"


def test_span_points_at_what_the_author_wrote() -> None:
    text = "Well, Y0U 1D10T!!"
    view = normalise(text).squeezed
    start = view.text.index("you idiot")
    lo, hi = view.original_span(start, start + len("you idiot"))
    assert text[lo:hi] == "Y0U 1D10T"


@pytest.mark.parametrize(
    ("text", "folded", "word", "span"),
    [
        ("y o u  i d i o t", "you  idiot", "idiot", (7, 16)),
        ("you i.d.i.o.t!", "you idiot!", "idiot", (4, 13)),
        ("lazy s-c-r-o-u-n-g-e-r", "lazy scrounger", "scrounger", (5, 22)),
        ("you are a s c r o u n g e r", "you are a scrounger", "scrounger", (10, 27)),
        ("P.S. I love you", "p.s. i love you", "love", (7, 11)),
        ("e.g. this", "e.g. this", "this", (5, 9)),
    ],
)
def test_letter_spaced_words_are_joined_with_original_spans(text: str, folded: str, word: str, span: tuple[int, int]) -> None:
    view = normalise(text).folded
    assert view.text == folded
    start = view.text.index(word)
    assert view.original_span(start, start + len(word)) == span
