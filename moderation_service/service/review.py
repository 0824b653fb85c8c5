"""The human queue as a moderator reviews it: urgent first, then oldest; each post with its matched words marked.

What a moderator reads is built here once (for the console): the escalation, the decision it came from,
and the post's text split into plain and highlighted pieces from the decision's spans. Text is read
only while it is inside its TTL; after that the item says "expired" instead of failing.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from moderation_service.core.decision import Decision, DistressLevel, Priority
from moderation_service.errors import NotFoundError
from moderation_service.service.parts import Services
from moderation_service.store import Escalation, Scope, SubmissionIn

__all__ = ["SENSITIVE_CATEGORIES", "Piece", "pieces", "ReviewItem", "TextState", "review_item", "review_queue"]

# Moderators choose when to read these (protected viewing): self-harm, suicide and distress, hate.
SENSITIVE_CATEGORIES = frozenset({"self_harm_content", "distress", "hate"})


class TextState(StrEnum):
    shown = "shown"
    expired = "expired"  # a queued post whose text outlived its TTL
    not_kept = "not_kept"  # answered synchronously: the service never stored the text


class Piece(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    reason: str | None = None  # the category that matched here, when highlighted


class ReviewItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    escalation: Escalation
    decision: Decision | None
    text_state: TextState = TextState.not_kept
    title: tuple[Piece, ...] = ()
    body: tuple[Piece, ...] = ()

    @property
    def sensitive_categories(self) -> list[str]:
        found = set(self.escalation.categories) & SENSITIVE_CATEGORIES
        if self.decision is not None and self.decision.distress_level is not DistressLevel.none:
            found.add("distress")
        return sorted(found)

    @property
    def urgent(self) -> bool:
        return self.escalation.priority is Priority.urgent


def pieces(text: str, spans: list[tuple[int, int, str]]) -> tuple[Piece, ...]:
    """``text`` cut at the spans (overlaps merged, the first category named), in order."""
    out: list[Piece] = []
    at = 0
    for start, end, category in sorted(spans):
        start, end = max(start, at), min(end, len(text))
        if end <= start:
            continue
        if start > at:
            out.append(Piece(text=text[at:start]))
        out.append(Piece(text=text[start:end], reason=category))
        at = end
    if at < len(text):
        out.append(Piece(text=text[at:]))
    return tuple(out)


def _with_text(item: ReviewItem, body: SubmissionIn) -> ReviewItem:
    spans: dict[str, list[tuple[int, int, str]]] = {"title": [], "body": []}
    for reason in item.decision.reasons if item.decision else ():
        if reason.span is not None:
            spans[reason.span.field.value].append((reason.span.start, reason.span.end, reason.category))
    return item.model_copy(
        update={
            "text_state": TextState.shown,
            "title": pieces(body.title, spans["title"]) if body.title else (),
            "body": pieces(body.text, spans["body"]),
        }
    )


def review_queue(services: Services, scope: Scope, limit: int = 200) -> list[ReviewItem]:
    """Open escalations in the scope: urgent first, then oldest; texts read in one pass."""
    store = services.require_store()
    rows = store.open_escalations(limit, scope)
    rows.sort(key=lambda e: (e.priority is not Priority.urgent, e.created_at))
    decisions = store.escalation_decisions([e.id for e in rows])
    return [_item(services, ReviewItem(escalation=e, decision=decisions.get(e.id))) for e in rows]


def _item(services: Services, item: ReviewItem) -> ReviewItem:
    store = services.require_store()
    body = store.body(item.escalation.id)
    if body is not None:
        return _with_text(item, body)
    state = TextState.expired if store.get(item.escalation.id) is not None else TextState.not_kept
    return item.model_copy(update={"text_state": state})


def review_item(services: Services, scope: Scope, decision_id: str) -> ReviewItem:
    """One escalation (open or handled) in the scope; another tenant's is "not found"."""
    store = services.require_store()
    owner = store.owner(decision_id)
    if owner is None or not scope.allows(*owner):
        raise NotFoundError("no escalation with that id")
    rows = store.escalations([decision_id])
    if not rows:
        raise NotFoundError("no escalation with that id")
    decision = store.escalation_decisions([decision_id]).get(decision_id)
    return _item(services, ReviewItem(escalation=rows[0], decision=decision))
