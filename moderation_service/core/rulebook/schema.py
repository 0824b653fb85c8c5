"""The rule-file format, as pydantic models: unknown keys are refused, never ignored.

A rulebook is the community's code of conduct as data: the plain-language text members read,
the rules that enforce it, the classifier thresholds, and tests that pin down its behaviour.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from moderation_service.core.author import AuthorFacts
from moderation_service.core.decision import Action, DistressLevel, Priority

__all__ = [
    "AuthorCondition",
    "Band",
    "Category",
    "CrisisMessages",
    "CrisisPolicy",
    "Detector",
    "Match",
    "Outcome",
    "Rule",
    "RuleFile",
    "RuleTest",
    "Terms",
    "Threshold",
    "Unless",
]

RULE_ID = r"^[a-z0-9][a-z0-9_.\-]{0,79}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Detector(StrEnum):
    """Structured personal data found by a validating parser rather than a pattern alone."""

    phone_number = "phone_number"
    email = "email"
    uk_postcode = "uk_postcode"
    nhs_number = "nhs_number"
    url = "url"


class Terms(_Strict):
    """Alternatives: the group matches when any phrase, regex or detector matches."""

    phrases: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    detect: tuple[Detector, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Terms:
        if not (self.phrases or self.regex or self.detect):
            raise ValueError("give at least one of phrases, regex or detect")
        return self


class Match(_Strict):
    """``any``: one of these terms; ``all``: every group must also match in the same field."""

    any: Terms | None = None
    all: tuple[Terms, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if self.any is None and not self.all:
            raise ValueError("give 'any', 'all' or both")
        return self


class Unless(_Strict):
    """Exceptions: a hit is dropped when one of these overlaps it, or when it sits in a quote."""

    phrases: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    quoted: bool = False


class AuthorCondition(_Strict):
    """The rule applies only to authors within these limits (e.g. new accounts)."""

    max_account_age_days: int | None = Field(default=None, ge=0)
    max_approved_posts: int | None = Field(default=None, ge=0)


class Outcome(_Strict):
    """What happens when a rule or a threshold band fires."""

    action: Action
    priority: Priority | None = None
    publish: bool | None = Field(default=None, description="default: allow publishes, hold/escalate withhold")
    content_warning: str | None = None
    signpost: bool = False
    distress_level: DistressLevel | None = None
    message: str | None = Field(default=None, description="shown to the author")

    @model_validator(mode="after")
    def _priority_only_for_escalate(self) -> Outcome:
        if self.priority is not None and self.action is not Action.escalate:
            raise ValueError("priority is only for action: escalate")
        return self

    @property
    def publishes(self) -> bool:
        return self.publish if self.publish is not None else self.action is Action.allow


class Rule(Outcome):
    id: str = Field(pattern=RULE_ID)
    category: str
    description: str = Field(min_length=1, description="what members read in the code of conduct")
    match: Match
    unless: Unless = Unless()
    scope: tuple[Literal["title", "body"], ...] = ("title", "body")
    author: AuthorCondition | None = None


class Band(Outcome):
    min: float = Field(gt=0.0, le=1.0)


class Threshold(_Strict):
    """Classifier category -> actions, per community; the highest band reached applies."""

    category: str = Field(description="the rulebook category this score belongs to")
    bands: tuple[Band, ...] = Field(min_length=1)


class Category(_Strict):
    title: str
    text: str = Field(description="plain-language text members read")
    support: bool = Field(default=False, description="wellbeing, not a violation: must signpost, never a plain hold")


class CrisisMessages(_Strict):
    """What the author reads for each crisis level; each must agree with what happens to the post."""

    imminent: str = Field(
        default=(
            "If you are in danger right now, please call the emergency number below now, or go to A&E. "
            "A moderator has been alerted and will look at your post very soon; until then only you can see it."
        ),
        min_length=1,
    )
    high: str = Field(
        default="Your post is up, and a moderator has been asked to check in with you.",
        min_length=1,
    )


class CrisisPolicy(_Strict):
    """How this community meets crisis risk found by the grammars and model heads (docs/crisis-risk.md)."""

    category: str = "distress"
    content_warning: str = "Mentions suicide or self-harm"
    messages: CrisisMessages = CrisisMessages()
    unsupported_language: Literal[Action.allow, Action.hold] = Field(
        default=Action.allow,
        description="for a language the classifiers do not support: allow on rules and crisis grammars alone, or hold for a person",
    )


class RuleTest(_Strict):
    text: str
    title: str | None = None
    author: AuthorFacts | None = None
    triggers: tuple[str, ...] = ()
    not_triggers: tuple[str, ...] = ()
    action: Action | None = None
    distress_level: DistressLevel | None = Field(default=None, description="expected crisis level (rules + crisis grammars)")
    locale: str | None = None

    @model_validator(mode="after")
    def _expects_something(self) -> RuleTest:
        if not (self.triggers or self.not_triggers or self.action or self.distress_level):
            raise ValueError("a test needs triggers, not_triggers, action or distress_level")
        return self


class RuleFile(_Strict):
    """One YAML file as written; ``extends`` is resolved by the loader."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    title: str
    community: str
    version_note: str = ""
    intro: str = ""
    extends: str | None = None
    disable: tuple[str, ...] = ()
    signposting_message: str | None = None
    categories: dict[str, Category] = Field(default_factory=dict)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    crisis: CrisisPolicy | None = Field(default=None, description="default: CrisisPolicy() (or the extended rulebook's)")
    lexicons: dict[str, str | tuple[str, ...]] = Field(
        default_factory=dict, description="name -> terms, or a lexicon file; regex rules use them as {{name}}"
    )
    tests: tuple[RuleTest, ...] = ()
