"""Every line of every non-English crisis grammar has a working example, so a dead pattern cannot ship.

In the notation an alternative is one word (``a|b``): a line written as if a phrase could be one
alternative, or with a clitic, accent or word order the tokeniser never produces, compiles and then
matches nothing, silently. ``tests/data/crisis_examples/<language>.yaml`` gives sentences written in
each language per dimension, and sentences that must not fire. Each grammar line (patterns, supporting
patterns, time words) is compiled alone (the shipped file with only that line as its patterns, through
the public ``CrisisGrammar``) and must find its dimension in one of the examples stated for that
dimension; the shipped detector must find each example's dimension; the must-not-fire sentences must
give no signal at all, and each context line (idiom, hypothetical, past, reported, benign) must be
matched by one of them (a context line that matches nothing cancels nothing).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from moderation_service.core.crisis import CrisisDetector, CrisisGrammar, Dimension
from moderation_service.core.crisis.grammar_file import GrammarFile
from tests.grammars import RULES, language_detector, shipped_grammars

LANGUAGES = ("es", "fr", "de", "it", "pt", "pl", "cy")
DATA = Path(__file__).resolve().parent / "data" / "crisis_examples"
_HOPELESSNESS = frozenset({Dimension.hopelessness.value})
# Context lists dropped when a line is compiled alone; time words stay (they only add timing beside a
# hit), so the context matcher is never empty (spaCy warns on matching with no patterns).
_CONTEXT_FREE: dict[str, object] = {
    "supporting": {},
    "benign": (),
    "idioms": (),
    "hypothetical": (),
    "past": (),
    "reported": (),
    "recovery": (),
    "present": (),
}


class ExampleFile(BaseModel):
    """One language's examples: ``dimension`` (or ``a+b``) -> sentences that must give it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str
    locale: str
    examples: dict[str, tuple[str, ...]]
    must_not_fire: tuple[str, ...]

    @field_validator("examples")
    @classmethod
    def _known_dimensions(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for key in value:
            for part in key.split("+"):
                Dimension(part)  # an unknown name raises ValueError, which pydantic reports with the key
        return value


@functools.cache
def examples(language: str) -> ExampleFile:
    data = yaml.safe_load((DATA / f"{language}.yaml").read_text(encoding="utf-8"))
    return ExampleFile.model_validate(data)


@functools.cache
def detector() -> CrisisDetector:
    return CrisisDetector(shipped_grammars(), language_detector())


def _dimensions(key: str) -> frozenset[str]:
    return frozenset(key.split("+"))


def grammar_lines(grammar: GrammarFile) -> Iterator[tuple[str, str, str]]:
    """(section, dimension key, line) for every line that can raise a dimension."""
    for key, lines in grammar.patterns.items():
        for line in lines:
            yield "patterns", key, line
    for key, lines in grammar.supporting.items():
        for line in lines:
            yield "supporting", key, line
    for line in grammar.time_words:
        yield "time_words", Dimension.timing.value, line


@functools.cache
def alone(language: str, key: str, line: str, bare: bool = False) -> CrisisGrammar:
    """The shipped grammar with ``line`` as its only pattern and no context lists but time words.

    ``bare`` also drops negation and person, to test an idiom line as a phrase alone.
    """
    shipped = shipped_grammars()[language].file
    data = {**shipped.model_dump(), **_CONTEXT_FREE, "patterns": {key: (line,)}}
    if bare:
        data |= {"negation": {}, "person": {}}
    return CrisisGrammar(GrammarFile.model_validate(data), f"{language}.yaml {key}: {line}")


def _finds(grammar: CrisisGrammar, text: str, wanted: frozenset[str]) -> bool:
    return any({d.value for d in hit.dimensions} == wanted for hit in grammar.find(text))


def _signals(text: str, locale: str) -> set[str]:
    return {s.dimension.value for s in detector().detect({"body": text}, locale).signals}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_example_file_belongs_to_its_grammar(language: str) -> None:
    data = examples(language)
    assert data.language == language and data.locale.startswith(language)
    assert (RULES / "crisis" / f"{language}.yaml").is_file()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_grammar_line_matches_one_of_its_examples(language: str) -> None:
    data = examples(language)
    dead = []
    for section, key, line in grammar_lines(shipped_grammars()[language].file):
        wanted = _dimensions(key)
        candidates = [text for k, texts in data.examples.items() if wanted <= _dimensions(k) for text in texts]
        if not any(_finds(alone(language, key, line), text, wanted) for text in candidates):
            dead.append(f"rules/crisis/{language}.yaml {section}.{key}: {line!r}")
    assert not dead, "no example matches these lines (dead pattern, or add an example):\n" + "\n".join(dead)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_example_gives_its_dimension(language: str) -> None:
    data = examples(language)
    missed = []
    for key, texts in data.examples.items():
        for text in texts:
            found = _signals(text, data.locale)
            if not _dimensions(key) <= found:
                missed.append(f"{key}: {text!r} gave {sorted(found)}")
    assert not missed, "\n".join(missed)


@pytest.mark.parametrize("language", LANGUAGES)
def test_must_not_fire_sentences_give_no_risk(language: str) -> None:
    data = examples(language)
    assert len(data.must_not_fire) >= 5
    fired = [f"{text!r} gave {sorted(found)}" for text in data.must_not_fire if (found := _signals(text, data.locale))]
    assert not fired, "\n".join(fired)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_context_line_matches_a_must_not_fire_sentence(language: str) -> None:
    """Idioms, hypotheticals, the past, reported speech and benign reasons cancel hits; one that matches nothing cancels nothing."""
    data = examples(language)
    grammar = shipped_grammars()[language].file
    dead = []
    for section in ("idioms", "hypothetical", "past", "reported", "benign"):
        for line in getattr(grammar, section):
            phrase = alone(language, Dimension.hopelessness.value, line, bare=True)
            if not any(_finds(phrase, text, _HOPELESSNESS) for text in data.must_not_fire):
                dead.append(f"rules/crisis/{language}.yaml {section}: {line!r}")
    assert not dead, "no must-not-fire sentence matches these lines:\n" + "\n".join(dead)
