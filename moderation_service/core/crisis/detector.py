"""Find crisis risk in one post: its language, then every plausible language's grammar, field by field.

The grammars of all candidate languages run (English always among them), because a wrong language
guess must never hide a crisis. Model-head signals are added by the pipeline, which owns the models.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from moderation_service.core.crisis.dimensions import RiskSignal
from moderation_service.core.crisis.grammar import CrisisGrammar
from moderation_service.core.crisis.language import LanguageDetector, LanguageGuess
from moderation_service.core.normalise import Normalised, normalise

__all__ = ["CrisisDetector", "CrisisFinding"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrisisFinding:
    language: LanguageGuess
    signals: tuple[RiskSignal, ...]


class CrisisDetector:
    def __init__(self, grammars: Mapping[str, CrisisGrammar], languages: LanguageDetector | None = None) -> None:
        self.grammars = dict(grammars)
        self.languages = languages or LanguageDetector()

    @property
    def grammar_languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.grammars))

    def warm(self, background: bool = False) -> threading.Thread | None:
        """Compile every grammar and load the language detector, now or on a daemon thread.

        In the background a process serves English within a couple of seconds of starting; a post in
        another language that arrives before its grammar is ready waits for it (never skips it).
        """

        def work() -> None:
            self.languages.warm()
            for grammar in self.grammars.values():
                grammar.compile()
                grammar.find("warm up")  # loads the language's lemma dictionary for posts too
            log.info("crisis grammars ready", extra={"languages": list(self.grammar_languages)})

        if not background:
            work()
            return None
        thread = threading.Thread(target=work, name="crisis-warm-up", daemon=True)
        thread.start()
        return thread

    def detect(self, fields: Mapping[str, str | Normalised], locale: str | None) -> CrisisFinding:
        """``fields`` maps 'title'/'body' to text (or its ``Normalised`` views); spans point into the matching field.

        Each field is normalised once, however many languages' grammars read it.
        """
        views = {field: text if isinstance(text, Normalised) else normalise(text) for field, text in fields.items()}
        guess = self.languages.detect(
            "\n".join(view.original for view in views.values()), locale, "\n".join(view.folded.text for view in views.values())
        )
        signals: list[RiskSignal] = []
        seen: set[tuple[str, str, int | None, int | None]] = set()
        for language in guess.candidates:
            grammar = self.grammars.get(language)
            if grammar is None:
                continue
            for field, view in views.items():
                for signal in grammar.signals(view, field):
                    key = (signal.dimension.value, field, signal.start, signal.end)
                    if key not in seen:
                        seen.add(key)
                        signals.append(signal)
        return CrisisFinding(guess, tuple(signals))
