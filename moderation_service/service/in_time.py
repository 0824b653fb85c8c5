"""Answer inside a deadline, record after answering, and finish partial decisions in the background.

Coral waits for its phase timeout (default 200 ms) and then publishes the comment unmoderated, so
nothing slow may stand between the request and the answer: the decision is made in time (partial
when the model cannot finish, see ``Pipeline.moderate_in_time``), the answer goes out, and only then
is the escalation written to Redis. When the model finishes a partial decision and its decision is
more severe than the answer given, that decision goes to the human queue as an escalation: the post
may already be public, so a person must look.

Under overload the run queue sheds background runs (``core.model_runs``): a post answered without
the model and whose model run was shed is answered safely at once (``safe_without_model``); one shed
after its answer went out, whose answer the rules or grammars had anything to say about, goes to
the human queue, as a late decision would have.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from moderation_service.core.decision import SEVERITY, Action, Decision, Priority
from moderation_service.core.model_runs import ShedError
from moderation_service.core.pipeline import Answer, safe_without_model
from moderation_service.core.post import PostIn
from moderation_service.errors import OverloadedError
from moderation_service.service.escalate import record_escalation
from moderation_service.service.moderate import count_decision
from moderation_service.service.parts import Services
from moderation_service.store.rows import DEFAULT_TENANT

__all__ = [
    "HEADROOM",
    "InTime",
    "answer_by",
    "finish_in_background",
    "finish_late",
    "moderate_in_time",
    "moderate_in_time_async",
    "more_severe",
    "record_now",
    "require_time_left",
    "shed_late",
    "to_record_now",
]

log = logging.getLogger(__name__)

HEADROOM = 0.75  # aim to answer inside 75 % of the caller's budget: the rest is the network and the caller's own work


def answer_by(started: float, budget_ms: float) -> float:
    """The ``time.monotonic()`` by which the service answers a request that began at ``started``."""
    return started + budget_ms / 1000 * HEADROOM


def require_time_left(started: float, budget_ms: float) -> None:
    """OverloadedError (503 + Retry-After) for a request that waited in the server past its caller's whole budget
    before it could be judged: any answer is late, so shed it at once rather than spend the CPU the others need."""
    if time.monotonic() >= started + budget_ms / 1000:
        raise OverloadedError("the request waited past its time budget before it could be judged")


@dataclass(frozen=True)
class InTime:
    decision: Decision
    decision_id: str | None  # the id its escalation is recorded under (after the answer); None when there is nothing to record
    full: Future[Decision] | None  # partial decisions: the model's decision, when it finishes


def moderate_in_time(
    services: Services, posts: Sequence[PostIn], deadline: float, decision_ids: Sequence[str | None] | None = None
) -> list[InTime]:
    """Decisions by ``deadline``; nothing is written here (once the answer is sent: ``record_now`` and ``finish_in_background``).

    ``decision_ids``: stable ids (Coral: one per tenant, story, author, parent and text, so an edit
    sent twice is one escalation); otherwise each post that may need recording gets a fresh id.
    """
    return _results(services, services.pipeline.moderate_in_time([post.to_post() for post in posts], deadline), decision_ids)


async def moderate_in_time_async(
    services: Services, posts: Sequence[PostIn], deadline: float, decision_ids: Sequence[str | None] | None = None
) -> list[InTime]:
    """``moderate_in_time`` for an async route: the event loop awaits the model runners, no thread waits for them."""
    answers = await services.pipeline.moderate_in_time_async([post.to_post() for post in posts], deadline)
    return _results(services, answers, decision_ids)


def _results(services: Services, answers: list[Answer], decision_ids: Sequence[str | None] | None) -> list[InTime]:
    out = []
    for i, answer in enumerate(answers):
        count_decision(services, answer.decision)
        wanted = answer.decision.action is Action.escalate or answer.full is not None
        given = decision_ids[i] if decision_ids else None
        out.append(InTime(answer.decision, (given or secrets.token_hex(12)) if wanted else None, answer.full))
    return out


def more_severe(full: Decision, given: Decision) -> bool:
    """Whether the complete decision asks for more than the answer gave (action, withholding, urgency)."""

    def rank(d: Decision) -> tuple[int, bool, bool]:
        return SEVERITY[d.action], not d.publish, d.priority is Priority.urgent

    return rank(full) > rank(given)


def finish_late(
    services: Services, given: Decision, full: Decision, decision_id: str, post_id: str | None, context: str, tenant: str = DEFAULT_TENANT
) -> str | None:
    """The model finished after the answer: a more severe decision goes to the human queue (the escalation's id)."""
    if not more_severe(full, given):
        return None
    late = full
    if full.action is not Action.escalate:  # e.g. hold: the post was answered "allow" and may be public, so a person looks
        late = full.model_copy(update={"action": Action.escalate, "priority": full.priority or Priority.normal})
    log.info("late model decision more severe than the answer", extra={"action": full.action.value})
    if services.metrics is not None:
        services.metrics.late_escalations.inc()
    return record_escalation(services, late, post_id=post_id, context=context, decision_id=decision_id, tenant=tenant)


def to_record_now(result: InTime) -> bool:
    """Whether the answer itself is an escalation to store (routes skip the background task when none is)."""
    return result.decision_id is not None and result.decision.action is Action.escalate


def record_now(
    services: Services, results: Sequence[InTime], post_ids: Sequence[str | None], context: str = "", tenant: str = DEFAULT_TENANT
) -> None:
    """Store the escalations the answer gave (a Redis write: off the event loop, after the answer)."""
    for result, post_id in zip(results, post_ids, strict=True):
        if to_record_now(result):
            assert result.decision_id is not None
            record_escalation(services, result.decision, post_id=post_id, context=context, decision_id=result.decision_id, tenant=tenant)


def finish_in_background(
    services: Services, results: Sequence[InTime], post_ids: Sequence[str | None], context: str = "", tenant: str = DEFAULT_TENANT
) -> None:
    """Have each partial decision finished when its model does; no I/O here, so an async route calls it on the loop."""
    for result, post_id in zip(results, post_ids, strict=True):
        if result.decision_id is not None and result.full is not None:
            finish = functools.partial(_schedule_finish, services, result, post_id=post_id, context=context, tenant=tenant)
            result.full.add_done_callback(finish)


def shed_late(
    services: Services, given: Decision, decision_id: str, post_id: str | None, context: str, tenant: str = DEFAULT_TENANT
) -> str | None:
    """The model run of an answer already given was shed: an answer the rules or grammars had anything to say about
    goes to a person (it may be public), as it would have been held had the shed been known before answering."""
    safe = safe_without_model(given)
    if safe is given:
        return None  # nothing noticed: the rules-and-grammar answer stands
    log.info("background model run shed after a partial answer with signals; escalated")
    late = safe.model_copy(update={"action": Action.escalate, "priority": Priority.normal})
    return record_escalation(services, late, post_id=post_id, context=context, decision_id=decision_id, tenant=tenant)


def _schedule_finish(services: Services, result: InTime, full: Future[Decision], *, post_id: str | None, context: str, tenant: str) -> None:
    """Runs on a model thread: hand the store write to the background pool, never hold a model runner for it."""
    assert result.decision_id is not None
    error = full.exception()
    if isinstance(error, ShedError):
        _background(services, shed_late, services, result.decision, result.decision_id, post_id, context, tenant)
        return
    if error is not None:
        log.error("background model finish failed", extra={"error": error.__class__.__name__})
        return
    _background(services, finish_late, services, result.decision, full.result(), result.decision_id, post_id, context, tenant)


def _background(services: Services, fn: Callable[..., object], *args: object) -> None:
    try:
        services.background.submit(fn, *args)
    except RuntimeError:  # shutting down: do it here rather than lose it
        fn(*args)
