"""What a worker process loads once — settings, pipeline (rulebooks + models), store, queues."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from rq import Queue

from moderation_service.api.app import build_pipeline
from moderation_service.config import Settings
from moderation_service.metrics import Metrics, create_metrics
from moderation_service.pipeline import Pipeline
from moderation_service.queue import redis_client
from moderation_service.store import Store

__all__ = ["WorkerContext", "current", "install"]


@dataclass
class WorkerContext:
    settings: Settings
    pipeline: Pipeline
    store: Store
    queue: Queue
    webhook_queue: Queue
    metrics: Metrics
    registry: CollectorRegistry


_lock = threading.Lock()
_context: WorkerContext | None = None


def build(settings: Settings) -> WorkerContext:
    client = redis_client(settings)
    if client is None:
        raise RuntimeError("workers need MODERATION_REDIS_URL or MODERATION_REDIS_SENTINELS")
    store = Store(client, settings.text_ttl_s, settings.record_ttl_s)
    queue = Queue(settings.queue_name, connection=client)
    webhooks = Queue(f"{settings.queue_name}-webhooks", connection=client)
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    return WorkerContext(settings, build_pipeline(settings, metrics), store, queue, webhooks, metrics, registry)


def install(context: WorkerContext) -> None:
    global _context
    _context = context


def current() -> WorkerContext:
    """The process's context; built from the environment on first use if the worker did not preload."""
    global _context
    with _lock:
        if _context is None:
            _context = build(Settings())
        return _context
