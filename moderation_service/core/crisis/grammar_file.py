"""The crisis grammar file format (``rules/crisis/<language>.yaml``), as pydantic models.

A grammar is data a reviewer can read: word classes (``lexicon``), patterns per risk dimension
in a small notation, and the context that cancels a hit (idioms, negation, the past, other
people). Unknown keys are refused, so a typo never silently disables a pattern.

Pattern notation, one token per space-separated element, matched on lemmas:
``word``  a word (any inflection: ``saved`` also finds ``saving``);
``a|b``   either word; ``CLASS`` any word of a lexicon class; a trailing ``?`` makes an element
optional; ``~N`` skips up to N words inside one sentence; ``=took`` matches that exact form
(no lemma: tense matters); ``<year>`` matches a year from 1900 to last year (the past lists use it)
and ``<num>`` any number up to 999. A pattern that starts with ``@`` counts only when its clause
names the author (I, me, my).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moderation_service.core.crisis.dimensions import Dimension

__all__ = ["GrammarFile", "Negation", "Person"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Negation(_Strict):
    """A hit preceded in its clause by one of ``cues`` (within ``window`` words) is not the author's risk."""

    cues: tuple[str, ...] = ()
    window: int = Field(default=3, ge=1, le=8)
    breakers: tuple[str, ...] = Field(default=(), description="words after a cue that end its scope: can't *stop* thinking")


class Person(_Strict):
    """Pronouns that name who a clause is about; a risk hit about someone else is dropped."""

    first: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    window: int = Field(default=6, ge=1, le=12)


class GrammarFile(_Strict):
    language: str = Field(pattern=r"^[a-z]{2,3}$")
    name: str
    contractions: dict[str, str] = Field(default_factory=dict, description="token -> words, applied before matching")
    split_apostrophes: bool = Field(default=False, description="j'ai -> j' ai, mae'r -> mae 'r (French, Italian, Welsh...)")
    lexicon: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    patterns: dict[str, tuple[str, ...]] = Field(description="dimension (or dimension+dimension) -> patterns")
    supporting: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="dimension -> patterns that count only when the post has another risk hit"
    )
    time_words: tuple[str, ...] = Field(default=(), description="count as timing only beside another risk hit")
    benign: tuple[str, ...] = Field(
        default=(), description="ordinary reasons (a holiday, a pharmacy shortage) that cancel means/preparation in their sentence"
    )
    idioms: tuple[str, ...] = ()
    negation: Negation = Negation()
    hypothetical: tuple[str, ...] = Field(default=(), description="clause openers that make a hit hypothetical")
    past: tuple[str, ...] = Field(default=(), description="patterns marking a sentence as the distant past")
    reported: tuple[str, ...] = Field(default=(), description="patterns marking a sentence as fiction, news or statistics")
    recovery: tuple[str, ...] = Field(default=(), description="patterns marking a whole post as told from recovery")
    present: tuple[str, ...] = Field(default=(), description="patterns that keep a sentence current inside a recovery post")
    person: Person = Person()

    @field_validator("lexicon")
    @classmethod
    def _class_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, words in value.items():
            if not name.isupper() or not name.replace("_", "").isalpha():
                raise ValueError(f"lexicon class {name!r} must be UPPER_CASE letters")
            if not words:
                raise ValueError(f"lexicon class {name!r} is empty")
        return value

    @field_validator("patterns", "supporting")
    @classmethod
    def _known_dimensions(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        known = {d.value for d in Dimension}
        for key in value:
            unknown = [part for part in key.split("+") if part not in known]
            if unknown:
                raise ValueError(f"unknown dimension {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return value
