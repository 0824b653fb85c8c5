"""Graceful stop for a worker process: SIGTERM and SIGINT are ours, not RQ's.

RQ notices a stop request taken while idle only through private state, and a worker waiting for
Redis is not inside RQ at all, so the process keeps its own handler for the whole of its life:

* while loading (rulebooks, grammars, models): exit 0 at once, nothing has been taken yet;
* idle or waiting for Redis: leave the loop now (RQ's ``StopRequested`` ends a blocking dequeue);
* busy: finish the current job, then stop; a job still running ``timeout_s`` after the signal is
  released (its lease expires now, so any worker's reaper re-queues it) and the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

__all__ = ["GracefulStop", "StoppableForkWorker", "StoppableSimpleWorker"]

log = logging.getLogger(__name__)


class GracefulStop:
    """The process's SIGTERM/SIGINT handler, and what the worker loop asks: has a stop been requested?"""

    def __init__(self, timeout_s: float, on_exit: Callable[[], None]) -> None:
        self.timeout_s = timeout_s
        self.requested = threading.Event()
        self.loading = True  # until the first RQ worker is built: a stop then needs no care
        self.worker: Worker | SimpleWorker | None = None  # the RQ worker inside ``work()``, if any
        self.release: Callable[[], None] = lambda: None  # hands the running job back (set once the store is built)
        self._on_exit = on_exit

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def wait(self, seconds: float) -> bool:
        """Sleep that a stop request cuts short; True when one came."""
        return self.requested.wait(seconds)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            return  # a second signal changes nothing: the first one's stop is already under way
        self.requested.set()
        log.info(f"stop requested ({signal.Signals(signum).name})")
        if self.loading:
            self._exit()  # nothing taken, nothing to write; a SystemExit could be swallowed by the code loading a model
        worker = self.worker
        if worker is None:
            return  # between RQ workers (waiting for Redis): the loop sees ``requested``
        if worker.get_state() == WorkerStatus.BUSY:
            timer = threading.Timer(self.timeout_s, self._give_up)
            timer.daemon = True
            timer.start()
            return  # the job finishes; ``execute_job`` below then leaves RQ's loop
        raise StopRequested()  # idle: out of the blocking dequeue, through RQ's own handling

    def _give_up(self) -> None:
        """The job outlived the stop timeout: hand it back, and exit 0 without waiting for it."""
        try:
            self.release()
        finally:
            worker = self.worker
            if isinstance(worker, Worker) and not isinstance(worker, SimpleWorker) and worker.horse_pid:
                worker.kill_horse()
            log.warning("job still running at the stop timeout: released to another worker; exiting")
            self._exit()

    def _exit(self) -> None:
        self._on_exit()
        logging.shutdown()
        os._exit(0)


class _Graceful:
    """RQ worker behaviour under ``GracefulStop``: RQ installs no handlers, and a stop ends the loop after a job."""

    graceful: GracefulStop

    def _install_signal_handlers(self) -> None:
        pass  # GracefulStop's handlers stay in charge (RQ's would replace them in ``work()``)

    def subscribe(self) -> None:
        """No RQ command channel: stops come by signal, and its pub/sub thread would outlive a worker
        whose teardown a Redis outage cut short (one more thread retrying every 2 s per outage)."""

    def execute_job(self, job: Job, queue: Queue) -> Any:
        result = super().execute_job(job, queue)  # type: ignore[misc]
        if self.graceful.requested.is_set():
            raise StopRequested()
        return result


class StoppableSimpleWorker(_Graceful, SimpleWorker):
    """Jobs run in this (preloaded) process."""


class StoppableForkWorker(_Graceful, Worker):
    """Each job runs in a forked child."""
