"""The worker entry point: load rulebooks and models once, then run jobs in this process.

``SimpleWorker`` runs each job in the process that preloaded the pipeline; a forking ``Worker``
would pay a fork per job (see benchmarks/queue_throughput.py for the numbers behind this choice).
"""

from __future__ import annotations

import logging
import os
import time

import redis
from prometheus_client import multiprocess, start_http_server
from rq import SimpleWorker, Worker

from moderation_service.config import Settings
from moderation_service.logs import configure_logging
from moderation_service.metrics import scrape_registry
from moderation_service.workers.context import build, install
from moderation_service.workers.reaper import Reaper

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


def _stop_requested(worker: object) -> bool:
    return bool(getattr(worker, "_stop_requested", False) or getattr(worker, "_shutdown_requested_date", None))


def run_worker(settings: Settings, burst: bool = False, name: str | None = None) -> None:
    configure_logging(settings.log_level)
    ctx = build(settings)
    install(ctx)
    reaper = Reaper(ctx)
    reaper.start()
    if settings.queue.worker_metrics_port is not None:
        # Workers on other machines than the API are scraped here (in multiprocess mode: all local processes).
        # Loopback unless MODERATION_WORKER_METRICS_HOST opens it (e.g. inside a private container network).
        port, host = settings.queue.worker_metrics_port, settings.queue.worker_metrics_host
        start_http_server(port, addr=host, registry=scrape_registry(ctx.registry))
    queue = ctx.services.require_queue()
    log.info("worker ready")  # rulebooks, grammars and models are loaded: jobs start now
    try:
        while True:
            worker_class = SimpleWorker if settings.queue.worker_class == "simple" else Worker
            worker = worker_class([queue.moderation, queue.webhooks], connection=ctx.services.require_store().redis, name=name)
            try:
                # RQ installs its own SIGINT/SIGTERM handlers: warm shutdown, finishing the current job.
                worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            # RQ's loop also quits on a Redis time-out or an unexpected error; only a stop request
            # (SIGINT/SIGTERM) ends this process. RQ records one taken while idle only as the date it
            # came (``_stop_requested`` is set only when a job is running), so both are checked.
            if burst or _stop_requested(worker):
                return
            log.warning("worker loop ended without a stop request; restarting in 1 s")
            time.sleep(1.0)
    finally:
        reaper.stopping.set()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
