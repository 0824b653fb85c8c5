"""Replay a rule change: judge the same posts under the live rulebook and under a draft, and count what changes.

One function for the CLI (``rules replay DRAFT.yaml --corpus posts.jsonl``) and the console (stored
submissions still inside their text TTL), so both report the same numbers for the same posts. Both
sides run the live models and grammars; only the rulebook differs. Nothing is counted in the metrics
or stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from moderation_service.core.decision import SEVERITY, Action, Decision
from moderation_service.core.post import PostIn
from moderation_service.errors import UnknownRulebookError
from moderation_service.service.drafts import Draft, judge_draft
from moderation_service.service.parts import Services
from moderation_service.store import Scope

__all__ = ["ReplayExample", "ReplayReport", "Transition", "replay", "stored_posts"]

_CHUNK = 64


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    before: Action
    after: Action
    posts: int


class ReplayExample(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    before: Action
    after: Action
    categories: list[str]


class ReplayReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    rulebook: str
    live_version: str | None  # None: the draft adds a new rulebook (compared with the default one)
    draft_version: str
    posts: int
    changed: int
    transitions: list[Transition]  # per category, from -> to, most posts first
    examples: list[ReplayExample]


def _categories(decision: Decision) -> set[str]:
    return {r.category for r in decision.reasons if r.action is not Action.allow} or {"none"}


def _blame(before: Decision, after: Decision) -> list[str]:
    """The categories behind a change: those of the stricter of the two decisions."""
    stricter = after if SEVERITY[after.action] >= SEVERITY[before.action] else before
    return sorted(_categories(stricter))


def replay(services: Services, draft: Draft, posts: Sequence[tuple[str, PostIn]], examples_per_change: int = 3) -> ReplayReport:
    """Every post judged twice (live, then draft); changed decisions counted per category and from -> to."""
    live = services.pipeline
    try:
        live_book = live.rulebooks.get(draft.book.name)
        community: str | None = live_book.name
        live_version: str | None = live_book.version
    except UnknownRulebookError:
        community, live_version = None, None
    counts: Counter[tuple[str, Action, Action]] = Counter()
    shown: Counter[tuple[Action, Action]] = Counter()
    examples, changed = [], 0
    for start in range(0, len(posts), _CHUNK):
        chunk = posts[start : start + _CHUNK]
        before = live.moderate_batch([p.model_copy(update={"community": community}).to_post() for _, p in chunk])
        after = judge_draft(draft, [p for _, p in chunk])
        for (post_id, _), old, new in zip(chunk, before, after, strict=True):
            if old.action is new.action:
                continue
            changed += 1
            categories = _blame(old, new)
            for category in categories:
                counts[(category, old.action, new.action)] += 1
            if shown[(old.action, new.action)] < examples_per_change:
                shown[(old.action, new.action)] += 1
                examples.append(ReplayExample(id=post_id, before=old.action, after=new.action, categories=categories))
    transitions = [Transition(category=c, before=b, after=a, posts=n) for (c, b, a), n in counts.most_common()]
    return ReplayReport(
        rulebook=draft.book.name,
        live_version=live_version,
        draft_version=draft.book.version,
        posts=len(posts),
        changed=changed,
        transitions=transitions,
        examples=examples,
    )


def stored_posts(services: Services, scope: Scope, limit: int = 5000) -> list[tuple[str, PostIn]]:
    """Submissions in the scope whose text is still kept (inside its TTL), as (submission id, post)."""
    return [(sub_id, body) for sub_id, body in services.require_store().kept_texts(scope, limit)]
