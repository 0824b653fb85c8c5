"""The reaper thread every worker runs: one ``service.recover.reap`` pass per tick, and it never dies.

It is what guarantees no post is lost when a worker is killed mid-job (RQ never re-runs such a job).
"""

from __future__ import annotations

import logging
import threading

from moderation_service.errors import StoreUnavailable
from moderation_service.service.recover import Reaped, reap
from moderation_service.workers.context import WorkerContext

__all__ = ["Reaper"]

log = logging.getLogger(__name__)


class Reaper(threading.Thread):
    def __init__(self, ctx: WorkerContext) -> None:
        super().__init__(name="reaper", daemon=True)
        self.ctx = ctx
        self.stopping = threading.Event()
        self.tally = Reaped()

    def run(self) -> None:
        interval = self.ctx.settings.queue.reaper_interval_s
        while not self.stopping.wait(interval):
            try:
                self.tick()
            except StoreUnavailable as exc:
                log.warning("reaper could not reach Redis", extra={"error": exc.__class__.__name__})
            except Exception as exc:  # the reaper is what guarantees no post is lost: it must never die
                log.exception("reaper tick failed", extra={"error": exc.__class__.__name__})

    def tick(self) -> None:
        reap(self.ctx.services, self.tally, self.ctx.settings.queue.reaper_interval_s)
