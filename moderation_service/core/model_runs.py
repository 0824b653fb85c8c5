"""How busy the model threads are, and one request's share of them.

``ModelLoad`` keeps the backlog (model work queued or running, in units of 1,000 characters per
classifier call) and a moving estimate of the time one unit takes, so a caller with a deadline can
tell before waiting whether the model can finish in time (queue wait + expected run time), and the
API can shed load (503) instead of queueing without bound.

``RequestRuns`` feeds one request's model calls to the shared pool a few at a time (one per model
runner), so a 64-post batch of long posts cannot fill the queue ahead of every other request; calls
the request no longer wants (it has answered, or their post's deadline passed) are cancelled before
they start.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["ModelLoad", "RequestRuns", "units"]

_CHARS_PER_UNIT = 1000
_ALPHA = 0.2  # weight of the newest run in the moving estimate


def units(text: str) -> int:
    """Model work for one text, in units of 1,000 characters (a model window is about that long)."""
    return max(1, math.ceil(len(text) / _CHARS_PER_UNIT))


class ModelLoad:
    """Backlog and run-time estimate of one process's model pool; thread-safe."""

    def __init__(self, runners: int, limit_units: int) -> None:
        self.runners = max(1, runners)
        self.limit_units = limit_units
        self._lock = threading.Lock()
        self._backlog = 0
        self._unit_s: float | None = None

    @classmethod
    def for_pool(cls, threads: int, limit_units: int) -> ModelLoad:
        """Runs overlap no more than the pool's threads or the machine's cores allow."""
        return cls(min(threads, os.cpu_count() or 1), limit_units)

    @property
    def backlog_units(self) -> int:
        return self._backlog

    @property
    def unit_s(self) -> float | None:
        """Seconds one unit of model work takes (moving estimate); None until a run has finished."""
        return self._unit_s

    def expected_s(self, text: str) -> float:
        """Queue wait plus run time for ``text`` if it were queued now (0 before any run was measured)."""
        unit_s = self._unit_s or 0.0
        return (self._backlog / self.runners + units(text)) * unit_s

    def overloaded(self) -> bool:
        return self._backlog >= self.limit_units

    def started(self, work: int) -> None:
        with self._lock:
            self._backlog += work

    def finished(self, work: int, run_s: float | None) -> None:
        """A call left the pool; ``run_s`` is its run time when it ran to the end (not cancelled or stopped)."""
        with self._lock:
            self._backlog -= work
            if run_s is not None:
                per_unit = run_s / work
                self._unit_s = per_unit if self._unit_s is None else (1 - _ALPHA) * self._unit_s + _ALPHA * per_unit


class RequestRuns:
    """One request's model calls, at most ``parallel`` in the shared pool at once, in submission order."""

    def __init__(self, executor: Executor, load: ModelLoad, parallel: int) -> None:
        self._executor = executor
        self._load = load
        self._parallel = max(1, parallel)
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Future[Any], int, Callable[[], Any]]] = deque()
        self._running = 0

    def submit(self, work: int, fn: Callable[[], Any]) -> Future[Any]:
        """A future for ``fn()``; cancelling it before it reaches the pool means it never runs."""
        outer: Future[Any] = Future()
        with self._lock:
            self._waiting.append((outer, work, fn))
        self._feed()
        return outer

    def _feed(self) -> None:
        while True:
            with self._lock:
                if self._running >= self._parallel or not self._waiting:
                    return
                outer, work, fn = self._waiting.popleft()
                if not outer.set_running_or_notify_cancel():
                    continue  # the request stopped wanting it
                self._running += 1
            self._load.started(work)
            try:
                inner = self._executor.submit(fn)
            except RuntimeError as exc:  # the pool is shut down
                self._done(work, None)
                outer.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(self._relay, outer=outer, work=work))

    def _relay(self, inner: Future[Any], *, outer: Future[Any], work: int) -> None:
        exc = None if inner.cancelled() else inner.exception()
        result = None if inner.cancelled() or exc is not None else inner.result()
        # ``_predict_one`` returns (scores, run ms): a measured run feeds the estimate.
        run_s = result[1] / 1000 if isinstance(result, tuple) and len(result) == 2 else None
        self._done(work, run_s)
        if inner.cancelled():
            outer.set_exception(TimeoutError("cancelled"))
        elif exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(result)
        self._feed()

    def _done(self, work: int, run_s: float | None) -> None:
        with self._lock:
            self._running -= 1
        self._load.finished(work, run_s)
