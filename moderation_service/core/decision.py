"""The values that leave the core: a Decision and what it is made of.

Pydantic models (frozen) so the API, the queue and the CLI serialise exactly the same thing.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SEVERITY",
    "Action",
    "Contact",
    "ContactKind",
    "Decision",
    "DistressLevel",
    "Priority",
    "Reason",
    "ReasonSource",
    "Resource",
    "RulebookRef",
    "Signposting",
    "Span",
    "TextField",
]


class Action(StrEnum):
    allow = "allow"
    hold = "hold"
    escalate = "escalate"


SEVERITY = {Action.allow: 0, Action.hold: 1, Action.escalate: 2}


class Priority(StrEnum):
    normal = "normal"
    urgent = "urgent"


class DistressLevel(StrEnum):
    none = "none"
    low = "low"
    high = "high"
    imminent = "imminent"


DISTRESS_ORDER = {DistressLevel.none: 0, DistressLevel.low: 1, DistressLevel.high: 2, DistressLevel.imminent: 3}


class TextField(StrEnum):
    """The part of a post a span points into."""

    title = "title"  # type: ignore[assignment]  # shadows str.title on purpose: names equal values, as in every enum here
    body = "body"


class ReasonSource(StrEnum):
    rule = "rule"
    model = "model"
    grammar = "grammar"  # a crisis grammar hit
    crisis = "crisis"  # the combined risk level
    system = "system"  # degraded, unsupported language


class ContactKind(StrEnum):
    phone = "phone"
    sms = "sms"
    web = "web"
    email = "email"
    chat = "chat"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(_Frozen):
    """Character offsets ``[start, end)`` in the field the author wrote (title or body)."""

    field: TextField
    start: int
    end: int


class Reason(_Frozen):
    source: ReasonSource
    id: str = Field(description="rule id, model category, or a system code such as moderation_degraded")
    category: str
    action: Action
    message: str
    span: Span | None = None
    score: float | None = None


class Contact(_Frozen):
    kind: ContactKind
    value: str
    display: str | None = None


class Resource(_Frozen):
    id: str
    name: str
    description: str
    contacts: tuple[Contact, ...]
    hours: str
    countries: tuple[str, ...]
    source_url: str
    last_checked: str


class Signposting(_Frozen):
    locale: str
    country: str | None
    message: str
    resources: tuple[Resource, ...]


class RulebookRef(_Frozen):
    name: str
    version: str = Field(description="sha256 prefix of the resolved rulebook's content")


class Decision(_Frozen):
    action: Action
    publish: bool = Field(description="whether the forum may show the post now")
    priority: Priority | None = Field(default=None, description="set for escalations")
    distress_level: DistressLevel = DistressLevel.none
    scores: dict[str, float] = Field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    content_warnings: tuple[str, ...] = ()
    signposting: Signposting | None = None
    author_message: str | None = None
    rulebook: RulebookRef
    models: tuple[str, ...] = ()
    degraded: bool = False
    language: str | None = Field(default=None, description="ISO 639-1 code of the language the post is written in, when known")
    language_supported: bool = Field(
        default=True, description="whether the classifiers support that language (rules and crisis grammars always run)"
    )
    risk_dimensions: tuple[str, ...] = Field(default=(), description="crisis risk dimensions found (C-SSRS), see docs/crisis-risk.md")
    partial: bool = Field(
        default=False, description="answered inside a deadline from rules and crisis grammars only; the model's decision follows"
    )
    partial_reason: str | None = Field(default=None, description="why the decision is partial")
    timings_ms: dict[str, float] = Field(default_factory=dict)
