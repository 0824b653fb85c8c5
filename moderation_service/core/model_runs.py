"""The one run queue for model calls: bounded, first come first served, one runner thread per core.

Model runs are CPU bound, so more of them at once than there are cores only makes every one slower;
and a semaphore in front of a thread pool lets a newcomer overtake a call that has been waiting.
``RunQueue`` keeps calls in one FIFO deque that a fixed set of runner threads drain strictly in
arrival order. A caller gets a ``concurrent.futures.Future`` the runner completes (an async route
awaits it through ``asyncio.wrap_future``, which wakes the loop with ``call_soon_threadsafe``), so no
request needs a thread of its own for its model call.

The queue also knows how busy it is: the backlog (model work queued or running, in units of 1,000
characters per call) and a moving estimate of the time one unit takes, so a caller with a deadline
can tell before waiting whether the model can finish in time (queue wait + expected run time), and
the API can shed load (503) instead of queueing without bound. A call whose future was cancelled
(its request answered, or its post's deadline passed) is dropped before it starts.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueClosedError", "RunQueue", "runners_for", "units"]

_CHARS_PER_UNIT = 1000
_ALPHA = 0.2  # weight of the newest run in the moving estimate


def units(text: str) -> int:
    """Model work for one text, in units of 1,000 characters (a model window is about that long)."""
    return max(1, math.ceil(len(text) / _CHARS_PER_UNIT))


def runners_for(threads: int, model_threads: int = 1) -> int:
    """Runner threads for a process: at most ``threads``, and no more runs at once than the cores hold."""
    return max(1, min(threads, (os.cpu_count() or 1) // max(1, model_threads)))


class QueueClosedError(RuntimeError):
    """The process is stopping: no new model calls are taken."""


@dataclass(frozen=True)
class _Call:
    future: Future[Any]
    work: int
    fn: Callable[[], Any]


class RunQueue:
    """Model calls run in arrival order by ``runners`` threads; thread-safe, started on the first call."""

    def __init__(self, runners: int, limit_units: int, name: str = "model-runner") -> None:
        self.runners = max(1, runners)
        self.limit_units = limit_units
        self._name = name
        self._cond = threading.Condition()
        self._waiting: deque[_Call] = deque()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._backlog = 0
        self._unit_s: float | None = None
        self._cpu_s = 0.0
        self._runs = 0

    @property
    def backlog_units(self) -> int:
        return self._backlog

    @property
    def unit_s(self) -> float | None:
        """Seconds one unit of model work takes (moving estimate); None until a run has finished."""
        return self._unit_s

    @property
    def cpu_s(self) -> float:
        """CPU seconds the runner threads spent inside model calls (``time.thread_time``), for metrics and benchmarks."""
        return self._cpu_s

    @property
    def runs(self) -> int:
        """Model calls that ran (to the end or to an error)."""
        return self._runs

    def expected_s(self, text: str) -> float:
        """Queue wait plus run time for ``text`` if it were queued now (0 before any run was measured)."""
        unit_s = self._unit_s or 0.0
        return (self._backlog / self.runners + units(text)) * unit_s

    def overloaded(self) -> bool:
        return self._backlog >= self.limit_units

    def submit(self, work: int, fn: Callable[[], Any]) -> Future[Any]:
        """A future for ``fn()``, run after every call submitted before it; cancelling it before it starts means it never runs."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:  # stopping: the caller sees a failed call (a degraded decision), never a hang
                future.set_exception(QueueClosedError("the model run queue is closed"))
                return future
            if len(self._threads) < self.runners:
                self._start_runners()
            self._backlog += work
            self._waiting.append(_Call(future, work, fn))
            self._cond.notify()
        return future

    def _start_runners(self) -> None:
        while len(self._threads) < self.runners:
            # close() joins them on a clean stop; daemon, so a queue nobody closed (a tool, a test) cannot keep a process alive.
            thread = threading.Thread(target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return  # closed and drained
                call = self._waiting.popleft()
            if not call.future.set_running_or_notify_cancel():
                self._finished(call.work)  # nobody wants it any more
                continue
            cpu0, t0 = time.thread_time(), time.perf_counter()
            try:
                result = call.fn()
            except BaseException as exc:  # the caller decides what a failed call means (the pipeline degrades)
                self._finished(call.work, cpu_s=time.thread_time() - cpu0)
                call.future.set_exception(exc)
            else:
                self._finished(call.work, time.perf_counter() - t0, time.thread_time() - cpu0)
                call.future.set_result(result)

    def _finished(self, work: int, run_s: float | None = None, cpu_s: float | None = None) -> None:
        """A call left the queue; ``cpu_s`` when it ran, ``run_s`` when it ran to the end (it feeds the estimate)."""
        with self._cond:
            self._backlog -= work
            if cpu_s is not None:
                self._cpu_s += cpu_s
                self._runs += 1
            if run_s is not None:
                per_unit = run_s / work
                self._unit_s = per_unit if self._unit_s is None else (1 - _ALPHA) * self._unit_s + _ALPHA * per_unit

    def record(self, work: int, run_s: float) -> None:
        """Feed the estimate with a run measured elsewhere (a warm-up, or a test that sets the pace)."""
        with self._cond:
            self._backlog += work
        self._finished(work, run_s)

    def close(self, timeout: float | None = None) -> None:
        """Take no new calls, cancel those still waiting, let running ones finish, and join the runners."""
        with self._cond:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
        for call in waiting:
            if call.future.cancel():
                self._finished(call.work)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
