"""The worker entry point: load rulebooks and models once, then run jobs in this process.

``SimpleWorker`` runs each job in the process that preloaded the pipeline; a forking ``Worker``
would pay a fork per job (see benchmarks/queue_throughput.py for the numbers behind this choice).
"""

from __future__ import annotations

import logging
import signal
import time

import redis
from rq import SimpleWorker

from moderation_service.config import Settings
from workers.context import build, install
from workers.reaper import Reaper

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


def run_worker(settings: Settings, burst: bool = False, name: str | None = None) -> None:
    ctx = build(settings)
    install(ctx)
    reaper = Reaper(ctx)
    reaper.start()
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"]:
            worker = SimpleWorker([ctx.queue, ctx.webhook_queue], connection=ctx.store.redis, name=name)
            try:
                worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
                if burst:
                    return
            except (redis.ConnectionError, redis.TimeoutError):
                log.warning("worker lost Redis; retrying")
                time.sleep(1.0)
    finally:
        reaper.stopping.set()
