"""The shipped crisis grammars and language detector, compiled once per test session (seconds each) and shared."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from moderation_service.core.crisis import CrisisGrammar, LanguageDetector, load_grammars

__all__ = ["language_detector", "shipped_grammars"]

RULES = Path(__file__).resolve().parent.parent / "rules"


@functools.cache
def shipped_grammars() -> Mapping[str, CrisisGrammar]:
    return load_grammars(RULES / "crisis")


@functools.cache
def language_detector() -> LanguageDetector:
    return LanguageDetector()
