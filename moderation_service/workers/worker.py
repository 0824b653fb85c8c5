"""The worker entry point: load rulebooks and models once, then run jobs in this process until stopped.

``SimpleWorker`` runs each job in the process that preloaded the pipeline; a forking ``Worker``
would pay a fork per job (see benchmarks/queue_throughput.py for the numbers behind this choice).
Redis may be down when the worker starts, or restart under it: the worker waits and reconnects
(RQ's own loop quits on a Redis error); only SIGTERM/SIGINT end it (``workers/stopping.py``).
"""

from __future__ import annotations

import logging
import os

import redis
from prometheus_client import multiprocess, start_http_server
from rq.exceptions import StopRequested

from moderation_service import bootstrap
from moderation_service.config import Settings
from moderation_service.errors import ConfigError, StoreUnavailable
from moderation_service.logs import configure_logging
from moderation_service.metrics import scrape_registry
from moderation_service.service.rulebook_sync import start_follower
from moderation_service.workers.context import WorkerContext, build, install
from moderation_service.workers.reaper import Reaper
from moderation_service.workers.stopping import GracefulStop, StoppableForkWorker, StoppableSimpleWorker

__all__ = ["run_worker"]

log = logging.getLogger(__name__)

_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
_MAX_WAIT_S = 5.0


def _mark_dead() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _release(ctx: WorkerContext) -> None:
    """Expire the running job's leases so another worker re-runs its posts at once (best effort: Redis may be down)."""
    running = list(ctx.running)
    if running and ctx.services.store is not None:
        try:
            ctx.services.store.release_leases(running)
        except StoreUnavailable:
            log.warning("could not release the running job; its lease runs out by itself")


def run_worker(settings: Settings, burst: bool = False, name: str | None = None) -> None:
    configure_logging(settings.log_level)
    stop = GracefulStop(settings.queue.worker_stop_timeout_s, _mark_dead)
    stop.install()  # first: a SIGTERM while models load exits 0 too
    log.info("worker loading")
    ctx = build(settings)
    stop.release = lambda: _release(ctx)
    install(ctx)
    reaper = Reaper(ctx)
    reaper.start()
    follower = start_follower(ctx.services)
    if settings.queue.worker_metrics_port is not None:
        # Workers on other machines than the API are scraped here (in multiprocess mode: all local processes).
        # Loopback unless MODERATION_WORKER_METRICS_HOST opens it (e.g. inside a private container network).
        port, host = settings.queue.worker_metrics_port, settings.queue.worker_metrics_host
        start_http_server(port, addr=host, registry=scrape_registry(ctx.registry))
    log.info("worker ready")  # rulebooks, grammars and models are loaded: jobs start now
    stop.loading = False
    try:
        _work(ctx, stop, burst, name)
    except StopRequested:
        pass  # a stop that landed between two RQ workers
    finally:
        reaper.stopping.set()
        follower.stopping.set()
        _mark_dead()
    log.info("worker stopped")


def _work(ctx: WorkerContext, stop: GracefulStop, burst: bool, name: str | None) -> None:
    """RQ workers one after another until a stop request (or, in burst mode, an empty queue)."""
    queue_names = ctx.services.require_queue().names
    # RQ gets a client of its own: it raises its pool's socket timeout above its blocking dequeue's, and a
    # connection the store opened first (3 s timeout, to fail fast) would end that dequeue with a time-out.
    connection = bootstrap.redis_client(ctx.settings)
    if connection is None:
        raise ConfigError("workers need MODERATION_REDIS_URL or MODERATION_REDIS_SENTINELS")
    worker_class = StoppableSimpleWorker if ctx.settings.queue.worker_class == "simple" else StoppableForkWorker
    wait_s, outage = 0.2, False
    while not stop.requested.is_set():
        try:
            worker = worker_class(queue_names, connection=connection, name=name)  # it talks to Redis
        except _REDIS_ERRORS:
            if not outage:
                log.warning("Redis unreachable; waiting for it")
                outage = True
            stop.wait(wait_s)
            wait_s = min(_MAX_WAIT_S, wait_s * 2)
            continue
        if outage:
            log.info("Redis reachable again")
            outage, wait_s = False, 0.2
        worker.graceful = stop
        stop.worker = worker
        try:
            worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
        except StopRequested:
            pass  # a stop that came before RQ's loop was entered
        except _REDIS_ERRORS:
            pass  # Redis went away inside RQ's loop (or its teardown): build a new worker once it is back
        finally:
            stop.worker = None
        if burst:
            return
        if not stop.requested.is_set():
            log.warning("worker loop ended without a stop request; starting again")
            stop.wait(0.5)
