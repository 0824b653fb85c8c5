"""Accept submissions for the queue: stored first (so a 202 is never lost), then queued (a batch as a few jobs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel

from moderation_service.callbacks import check_callback_url
from moderation_service.errors import InputError, NotFoundError, StoreUnavailable
from moderation_service.service.moderate import check_batch
from moderation_service.service.parts import Services
from moderation_service.service.scope import community_of, require_communities
from moderation_service.store import Attempt, Scope, Submission, SubmissionIn

__all__ = ["Accepted", "accept_batch", "accept_submission", "enqueue_attempt", "submission_status"]

log = logging.getLogger(__name__)


class Accepted(BaseModel):
    submission_id: str
    post_id: str
    status_url: str
    created: bool


def enqueue_attempt(services: Services, submission_id: str, attempt: int) -> None:
    """Queue one attempt's job (a single submission, and the reaper's re-queues)."""
    services.require_queue().enqueue_moderation(submission_id, attempt)


def _check(services: Services, item: SubmissionIn) -> None:
    if item.callback_url:
        check_callback_url(item.callback_url, services.webhooks.callback_allowed_hosts, services.webhooks.callback_allowed_networks)


def _enqueue_new(services: Services, attempts: list[Attempt]) -> None:
    """Queue the first attempts of new submissions (already stored durably: a 202 never waits on this)."""
    try:
        services.require_queue().enqueue_moderations(attempts)
    except StoreUnavailable:
        # Stored durably but not queued: the reaper queues it, so the post is still never lost.
        log.warning("submissions stored but not queued; the reaper will queue them", extra={"count": len(attempts)})


def _accepted(item: SubmissionIn, sub_id: str, created: bool) -> Accepted:
    return Accepted(submission_id=sub_id, post_id=item.post_id, status_url=f"/v1/submissions/{sub_id}", created=created)


def accept_submission(services: Services, key_id: str, item: SubmissionIn, scope: Scope | None = None) -> Accepted:
    """Store the submission under the scope's tenant (idempotent per key and post_id) and queue its first attempt."""
    scope = scope or Scope()
    services.pipeline.check(item.to_post())
    require_communities(services, scope, [item])
    _check(services, item)
    sub_id, created = services.require_store().create_submission(key_id, item, scope.tenant, community_of(services, item))
    if created:
        _enqueue_new(services, [Attempt(submission_id=sub_id, attempt=1)])
    return _accepted(item, sub_id, created)


def accept_batch(services: Services, key_id: str, items: Sequence[SubmissionIn], scope: Scope | None = None) -> list[Accepted]:
    """All or nothing: the batch is checked (as the sync batch is), then stored under the scope's tenant in one atomic step."""
    scope = scope or Scope()
    check_batch(services, items, services.api.max_submission_batch)
    require_communities(services, scope, items)
    for index, item in enumerate(items):
        try:
            services.pipeline.rulebooks.get(item.community)
            _check(services, item)
        except InputError as exc:
            raise InputError(f"items[{index}]: {exc}") from exc
    communities = [community_of(services, item) for item in items]
    stored = services.require_store().create_submissions(key_id, list(items), scope.tenant, communities)
    _enqueue_new(
        services, [Attempt(submission_id=sub_id, attempt=1) for sub_id, created in stored if created]
    )  # a few jobs, one round trip
    return [_accepted(item, sub_id, created) for item, (sub_id, created) in zip(items, stored, strict=True)]


def submission_status(services: Services, submission_id: str, scope: Scope | None = None) -> Submission:
    """The submission if it is in the caller's scope; another tenant's is "not found", like a missing one."""
    scope = scope or Scope()
    submission = services.require_store().get(submission_id)
    if submission is None or not scope.allows(submission.tenant, submission.community):
        raise NotFoundError("no such submission (or its record has expired)")
    return submission
