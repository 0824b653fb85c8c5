"""What the service functions work with: the parts ``bootstrap`` built once per process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from moderation_service.config import ApiSettings, CoralSettings, QueueSettings, WebhookSettings
from moderation_service.core.pipeline import Pipeline
from moderation_service.errors import StoreUnavailable
from moderation_service.metrics import Metrics
from moderation_service.store import JobQueue, Store
from moderation_service.store.console import ConsoleSessions

__all__ = ["RulebookSyncState", "Services"]


@dataclass
class RulebookSyncState:
    """The rulebook version this process last saw published in Redis (``service.rulebook_sync``)."""

    published: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Services:
    """One per process (API or worker). ``store`` and ``queue`` are None when no Redis is configured."""

    pipeline: Pipeline
    api: ApiSettings
    queue_settings: QueueSettings
    webhooks: WebhookSettings
    coral: CoralSettings
    metrics: Metrics | None = None
    store: Store | None = None
    queue: JobQueue | None = None
    # Work done after an answer has gone out (record an escalation, finish a partial decision): never in the critical path.
    background: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="after-answer"))
    console: ConsoleSessions | None = None  # the moderator console's sign-ins (needs Redis)
    rulebook_sync: RulebookSyncState = field(default_factory=RulebookSyncState)

    def require_store(self) -> Store:
        """The store, or StoreUnavailable (HTTP 503 + Retry-After) when no Redis is configured."""
        if self.store is None:
            raise StoreUnavailable("the queue is not configured (MODERATION_REDIS_URL)")
        return self.store

    def require_queue(self) -> JobQueue:
        if self.queue is None:
            raise StoreUnavailable("the queue is not configured (MODERATION_REDIS_URL)")
        return self.queue

    def close(self) -> None:
        """Finish what was promised after answering (escalations to record), then stop the model threads."""
        self.background.shutdown(wait=True)
        self.pipeline.close()
