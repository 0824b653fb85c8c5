"""Connecting API and workers to Redis and RQ, one way for both (URL or Sentinel)."""

from __future__ import annotations

import redis
from redis.sentinel import Sentinel

from moderation_service.config import Settings
from moderation_service.store import Store, connect

__all__ = ["JOB_FUNCTION", "WEBHOOK_FUNCTION", "job_id", "redis_client", "store_from_settings"]

JOB_FUNCTION = "workers.jobs.moderate_submission"
WEBHOOK_FUNCTION = "workers.jobs.deliver_webhook"


def redis_client(settings: Settings) -> redis.Redis | None:
    """None when no Redis is configured (the sync API still works)."""
    if settings.redis_sentinels:
        nodes = []
        for entry in settings.redis_sentinels.split(","):
            host, _, port = entry.strip().rpartition(":")
            nodes.append((host, int(port)))
        sentinel = Sentinel(nodes, socket_timeout=2, socket_connect_timeout=2)  # type: ignore[no-untyped-call]
        client: redis.Redis = sentinel.master_for(settings.redis_sentinel_service, socket_timeout=3)  # type: ignore[no-untyped-call]
        return client
    if settings.redis_url:
        return connect(settings.redis_url)
    return None


def store_from_settings(settings: Settings) -> Store | None:
    client = redis_client(settings)
    return Store(client, settings.text_ttl_s, settings.record_ttl_s) if client is not None else None


def job_id(submission_id: str, attempt: int) -> str:
    """One RQ job per attempt, so a re-queued attempt never collides with the one it replaces."""
    return f"{submission_id}-{attempt}"
