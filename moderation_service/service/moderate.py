"""Moderate now: check posts, run the pipeline, count each post judged once, record escalations."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from moderation_service.core.decision import Action, Decision
from moderation_service.core.post import PostIn
from moderation_service.errors import InputError, OverloadedError, StoreUnavailable, TextTooLongError
from moderation_service.service.escalate import record_escalation
from moderation_service.service.parts import Services
from moderation_service.service.scope import require_communities
from moderation_service.store import Scope

__all__ = ["Judged", "admit", "check_batch", "count_decision", "judge", "judge_parts", "moderate_now", "moderate_now_async"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    decision: Decision
    decision_id: str | None  # set when the decision (or its escalation) was stored, for feedback

    @property
    def escalation_recorded(self) -> bool | None:
        """For an escalation: whether it reached the human queue (False: no moderator will see it there)."""
        return None if self.decision.action is not Action.escalate else self.decision_id is not None


def _stored(services: Services, decision: Decision, post_id: str | None, tenant: str) -> str | None:
    """Every sync decision gets an id moderators can give feedback on; an escalation's is its queue entry.

    Best effort, as for escalations: with no store, or the store down, the decision stands without an id.
    """
    if decision.action is Action.escalate:
        return record_escalation(services, decision, post_id=post_id, tenant=tenant)
    if services.store is None:
        return None
    decision_id = secrets.token_hex(12)
    try:
        services.store.record_decision(decision_id, decision, post_id, tenant)
    except StoreUnavailable:
        log.warning("decision not recorded for feedback: store unavailable", extra={"action": decision.action.value})
        return None
    return decision_id


def check_batch(services: Services, posts: Sequence[PostIn], limit: int) -> None:
    """The same pre-check for every batch route: at most ``limit`` items; an over-long item is 413, others 422 naming it."""
    if len(posts) > limit:
        raise InputError(f"a batch holds at most {limit} items; got {len(posts)}")
    for index, post in enumerate(posts):
        try:
            services.pipeline.check(post.to_post())
        except TextTooLongError:
            raise
        except InputError as exc:
            raise InputError(f"items[{index}]: {exc}") from exc


def count_decision(services: Services, decision: Decision) -> None:
    """The one place a judged post is counted (decisions, categories, rule hits, stage times)."""
    if services.metrics is not None:
        services.metrics.observe_decision(decision)


def judge(services: Services, posts: Sequence[PostIn], *, count: bool = True) -> list[Decision]:
    """Decisions in input order, each post counted once in the metrics (``count=False``: the caller counts)."""
    decisions = services.pipeline.moderate_batch([post.to_post() for post in posts])
    if count:
        for decision in decisions:
            count_decision(services, decision)
    return decisions


def judge_parts(services: Services, post: PostIn, parts: Sequence[str]) -> tuple[Decision, list[Decision]]:
    """A post and pieces of it (Perspective's span scores): only the post itself counts as a decision."""
    whole = judge(services, [post])[0]
    pieces = services.pipeline.moderate_batch([post.model_copy(update={"text": text, "title": None}).to_post() for text in parts])
    return whole, pieces


def admit(services: Services) -> None:
    """Shed a sync request (503 + Retry-After) while the model backlog is full, rather than answer it late."""
    if services.pipeline.overloaded():
        if services.metrics is not None:
            services.metrics.shed.inc()
        raise OverloadedError("the model queue is full; retry shortly, or send X-Moderation-Deadline-Ms for an answer in time")


def moderate_now(services: Services, posts: Sequence[PostIn], post_ids: Sequence[str | None], scope: Scope | None = None) -> list[Judged]:
    """The sync path: judge, then put escalations on the scope's human queue (the caller keeps the decision either way)."""
    scope = scope or Scope()
    require_communities(services, scope, posts)
    admit(services)
    decisions = judge(services, posts)
    return _store_all(services, decisions, post_ids, scope.tenant)


async def moderate_now_async(
    services: Services, posts: Sequence[PostIn], post_ids: Sequence[str | None], scope: Scope | None = None
) -> list[Judged]:
    """``moderate_now`` for an async route: the loop awaits the model runners; only Redis writes take a thread."""
    scope = scope or Scope()
    require_communities(services, scope, posts)
    admit(services)
    decisions = await services.pipeline.moderate_batch_async([post.to_post() for post in posts])
    for decision in decisions:
        count_decision(services, decision)
    if services.store is None:  # nothing to write: no blocking call, so no thread
        return _store_all(services, decisions, post_ids, scope.tenant)
    return await asyncio.to_thread(_store_all, services, decisions, post_ids, scope.tenant)


def _store_all(services: Services, decisions: Sequence[Decision], post_ids: Sequence[str | None], tenant: str) -> list[Judged]:
    return [Judged(decision, _stored(services, decision, post_id, tenant)) for decision, post_id in zip(decisions, post_ids, strict=True)]
