"""Which language a post is written in, offline (``lingua``: models inside the wheel, nothing downloaded).

Short posts are hard for any detector ("I want to die" scores Dutch first), so a detector guess
counts only when it is confident; otherwise English function words, then the request's locale,
decide. ``candidates`` lists every plausible language, so the crisis grammars of all of them run:
a wrong guess must never hide a crisis. Text written wholly in a script only one detected language
uses (Greek, Han, Devanagari, Bengali, Gurmukhi, Gujarati) is that language without asking lingua.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import re2
import regex

__all__ = ["LanguageDetector", "LanguageGuess", "own_script_language"]

# Languages the detector chooses between: every language with a crisis grammar, plus those most
# used in UK and European communities, so "not supported" can be said truthfully.
_DETECTED = ("en es fr de it pt pl cy nl ro ar ur hi bn pa gu tr zh ru uk lt so fa ga sv da nb fi el hu cs sk bg hr sq").split()
# Words that are English and rarely anything else (not "me", "he", "a", "i": Spanish and Welsh share them).
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the and to of is are was were be been it its this that have has had does did not just can get got im ive dont cant "
    "you your she they we our what when how with my myself want feel "
    # text-speak, as English as "the" on a UK forum ("u r a moron" read as Spanish left the models out)
    "u ur youre lol tbh idk omg pls plz thx cos coz gonna wanna".split()
)
_WORDS = re2.compile(r"[\pL']+")
# The same words for ASCII text (most posts), without re2's per-match Python cost; the engines' Unicode tables
# differ outside ASCII (regex knows newer letters), so other text keeps re2 (tests/test_token_regex.py).
_ASCII_WORDS = regex.compile(r"[\p{L}']+")
# Scripts written by exactly one language of ``_DETECTED``: text whose letters are all in one of them is that
# language, and lingua says so with confidence 1.0 (tests/test_language_script.py checks it against lingua), so
# the detector is not asked (it costs ~0.4 ms per short post). Latin, Cyrillic and Arabic are shared: asked.
_OWN_SCRIPTS = {
    language: re2.compile(rf"[^\pL]*\p{{{script}}}[\p{{{script}}}\PL]*")
    for language, script in (
        ("el", "Greek"),
        ("zh", "Han"),
        ("hi", "Devanagari"),
        ("bn", "Bengali"),
        ("pa", "Gurmukhi"),
        ("gu", "Gujarati"),
    )
}
_CONFIDENT = 0.5
_CANDIDATE = 0.1


@dataclass(frozen=True)
class LanguageGuess:
    language: str | None  # ISO 639-1; None when nothing could be told (emoji, numbers)
    confidence: float
    candidates: tuple[str, ...]  # every plausible language, best first


def own_script_language(text: str) -> str | None:
    """The language whose own script writes every letter of ``text`` (None for Latin, Cyrillic, Arabic, mixed)."""
    if text.isascii():
        return None
    return next((language for language, pattern in _OWN_SCRIPTS.items() if pattern.fullmatch(text)), None)


def _locale_language(locale: str | None) -> str | None:
    if not locale:
        return None
    head = locale.replace("_", "-").split("-")[0].lower()
    return head if head.isalpha() and 2 <= len(head) <= 3 else None


class LanguageDetector:
    """Thread-safe, built once per process (the models load lazily on first use)."""

    def __init__(self, languages: Iterable[str] = _DETECTED) -> None:
        self._codes = tuple(languages)
        # A script is a language's own only among _DETECTED's languages; another set may share it (Hindi, Marathi).
        self._own_scripts = set(self._codes) <= set(_DETECTED)
        self._lock = threading.Lock()
        self._detector: object | None = None

    def _build(self) -> object:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        wanted = []
        for code in self._codes:
            try:
                wanted.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
            except (AttributeError, ValueError):
                continue
        return LanguageDetectorBuilder.from_languages(*wanted).build()

    def warm(self) -> None:
        """Build the detector now (at start-up), not on the first request."""
        self._ensure().compute_language_confidence_values("warm up")  # type: ignore[attr-defined]

    def _ensure(self) -> object:
        with self._lock:
            if self._detector is None:
                self._detector = self._build()
            return self._detector

    def ranked(self, text: str) -> list[tuple[str, float]]:
        """lingua's three likeliest languages with their confidence values."""
        values = self._ensure().compute_language_confidence_values(text[:2000])  # type: ignore[attr-defined]
        return [(v.language.iso_code_639_1.name.lower(), float(v.value)) for v in values[:3]]

    def detect(self, text: str, locale: str | None = None, folded: str | None = None) -> LanguageGuess:
        """``folded``: the same text with obfuscation undone (``normalise``), where English words are counted:
        "u r a m0r0n" splits into "m", "r", "n" as written and reads as Albanian, as folded it is English."""
        lowered = (text if folded is None else folded).lower()
        words = (_ASCII_WORDS if lowered.isascii() else _WORDS).findall(lowered)
        hinted = _locale_language(locale)
        if not words:
            return LanguageGuess(hinted, 0.0, tuple(c for c in (hinted, "en") if c))
        own = own_script_language(text[:2000]) if self._own_scripts else None
        ranked = [(own, 1.0)] if own is not None and own in self._codes else self.ranked(text)
        english_share = sum(w.strip("'") in _ENGLISH_FUNCTION_WORDS for w in words) / len(words)
        best, confidence = ranked[0] if ranked else (None, 0.0)
        if english_share >= 0.2 and (confidence < 0.9 or best == "en"):
            best, confidence = "en", max(confidence if best == "en" else 0.0, english_share)
        elif confidence < _CONFIDENT:
            best = hinted or (best if len(words) >= 3 else None)  # "ok", "kms": too short to tell
        candidates = [best, *(code for code, value in ranked if value >= _CANDIDATE), hinted, "en"]
        return LanguageGuess(best, round(confidence, 3), tuple(dict.fromkeys(c for c in candidates if c)))
