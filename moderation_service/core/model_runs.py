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

Two lanes. A caller waiting for its answer submits to the first; the background finish of a partial
answer (the answer went out without the model) to the second, which runners serve only when the
first is empty: under overload, finishes of answers already given never delay answers still owed.
Background runs use spare runner time only, so one is admitted (``admit_background``) only when the
runners' spare time, as they recently had it, can start it before it stops being useful; otherwise
it is shed, and a waiting one that still cannot start by then is shed without running (``ShedError``).
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

__all__ = ["QueueClosedError", "RunQueue", "ShedError", "runners_for", "units"]

_CHARS_PER_UNIT = 1000
_ALPHA = 0.2  # weight of the newest run in the moving estimate
_BUSY_WINDOW_S = 1.0  # time constant of the runners' foreground busy share (how recently "spare time" was seen)


def units(text: str) -> int:
    """Model work for one text, in units of 1,000 characters (a model window is about that long)."""
    return max(1, math.ceil(len(text) / _CHARS_PER_UNIT))


def runners_for(threads: int, model_threads: int = 1) -> int:
    """Runner threads for a process: at most ``threads``, and no more runs at once than the cores hold."""
    return max(1, min(threads, (os.cpu_count() or 1) // max(1, model_threads)))


def _lower_priority(nice: int) -> None:
    """Schedule the calling thread ``nice`` steps below its process (Linux: a thread is a task with its own nice).

    A model run is CPU bound and can wait; the thread that answers requests cannot. At the same priority
    the runners take the CPU from the event loop under load, and answers that need no model (partial
    ones) queue behind model work they never asked for. Elsewhere this does nothing.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:  # not allowed, or threads share one priority on this system: the runners still work
        pass


class QueueClosedError(RuntimeError):
    """The process is stopping: no new model calls are taken."""


class ShedError(RuntimeError):
    """A background run could not start while it was still useful: it was dropped without running."""


@dataclass(frozen=True)
class _Call:
    future: Future[Any]
    work: int
    fn: Callable[[], Any]
    start_by: float | None = None  # background calls: dropped (ShedError) if no runner took them by then


class RunQueue:
    """Model calls run in arrival order by ``runners`` threads; thread-safe, started on the first call."""

    def __init__(self, runners: int, limit_units: int, name: str = "model-runner", nice: int = 0) -> None:
        self.runners = max(1, runners)
        self.limit_units = limit_units
        self.nice = nice
        self._name = name
        self._cond = threading.Condition()
        self._waiting: deque[_Call] = deque()
        self._later: deque[_Call] = deque()  # background lane: served only when ``_waiting`` is empty
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._backlog = 0  # first lane's queued work plus every running call
        self._later_units = 0
        self._unit_s: float | None = None
        self._cpu_s = 0.0
        self._runs = 0
        self._busy_s = 0.0  # foreground run time, decayed with _BUSY_WINDOW_S
        self._busy_at = time.monotonic()
        self._shed = {"at_answer": 0, "after_answer": 0}

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

    @property
    def background_units(self) -> int:
        """Background work waiting for spare runner time."""
        return self._later_units

    @property
    def shed(self) -> dict[str, int]:
        """Background runs shed: refused when the partial answer was made (``at_answer``), or dropped unstarted later."""
        return dict(self._shed)

    def spare(self) -> float:
        """The share of runner time foreground calls left free recently (1: idle, 0: busy throughout)."""
        with self._cond:
            return self._spare(time.monotonic())

    def _spare(self, now: float) -> float:
        self._decay(now)
        return max(0.0, 1.0 - self._busy_s / (_BUSY_WINDOW_S * self.runners))

    def admit_background(self, work: int, start_by: float) -> bool:
        """Whether a background run of ``work`` units can start by ``start_by``: after the foreground calls queued
        now, on the share of runner time that foreground calls left spare lately, behind the background work waiting.

        Counted as shed when not: the caller gives an answer that is safe without the model.
        """
        unit_s = self._unit_s or 0.0
        now = time.monotonic()
        with self._cond:
            free_from = now + self._backlog / self.runners * unit_s  # the foreground lane, as it stands, is done
            runner_s = self._spare(now) * self.runners * max(0.0, start_by - free_from)
            full = self._closed or self._backlog >= self.limit_units
            admitted = not full and (self._later_units + work) * unit_s <= runner_s
            if not admitted:
                self._shed["at_answer"] += 1
            return admitted

    def expected_s(self, text: str) -> float:
        """Queue wait plus run time for ``text`` if it were queued now in the first lane (0 before any run was measured)."""
        unit_s = self._unit_s or 0.0
        return (self._backlog / self.runners + units(text)) * unit_s

    def overloaded(self) -> bool:
        return self._backlog >= self.limit_units

    def submit(self, work: int, fn: Callable[[], Any], *, start_by: float | None = None) -> Future[Any]:
        """A future for ``fn()``, run after every call submitted before it; cancelling it before it starts means it never runs.

        ``start_by``: a background call (see ``admit_background``), run only when no foreground call waits,
        and failed with ``ShedError`` unstarted if no runner is free for it by then.
        """
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:  # stopping: the caller sees a failed call (a degraded decision), never a hang
                future.set_exception(QueueClosedError("the model run queue is closed"))
                return future
            if len(self._threads) < self.runners:
                self._start_runners()
            if start_by is None:
                self._backlog += work
                self._waiting.append(_Call(future, work, fn))
            else:
                self._later_units += work
                self._later.append(_Call(future, work, fn, start_by))
            self._cond.notify()
        return future

    def _start_runners(self) -> None:
        while len(self._threads) < self.runners:
            # close() joins them on a clean stop; daemon, so a queue nobody closed (a tool, a test) cannot keep a process alive.
            thread = threading.Thread(target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self) -> tuple[_Call | None, list[_Call], bool]:
        """The oldest foreground call, else the oldest background call still useful (None: nothing to run now);
        the background calls passed over because their time to start had gone; and whether to stop (closed, drained)."""
        expired: list[_Call] = []
        with self._cond:
            while not self._waiting and not self._later and not self._closed:
                self._cond.wait()
            now = time.monotonic()
            while self._later and self._later[0].start_by is not None and now > self._later[0].start_by:
                expired.append(self._later.popleft())  # swept even while foreground calls keep every runner busy
                self._later_units -= expired[-1].work
            if self._waiting:
                return self._waiting.popleft(), expired, False
            if not self._later:
                return None, expired, self._closed
            call = self._later.popleft()
            self._later_units -= call.work
            self._backlog += call.work  # running now: it delays the foreground calls behind it
            return call, expired, False

    def _run(self) -> None:
        _lower_priority(self.nice)
        while True:
            call, expired, stop = self._next()
            for late in expired:  # outside the lock: failing a future runs its callbacks
                if late.future.set_running_or_notify_cancel():
                    with self._cond:
                        self._shed["after_answer"] += 1
                    late.future.set_exception(ShedError("no runner was free for this background run in time"))
            if stop:
                return
            if call is None:
                continue
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
                self._finished(call.work, time.perf_counter() - t0, time.thread_time() - cpu0, foreground=call.start_by is None)
                call.future.set_result(result)

    def _decay(self, now: float) -> None:
        self._busy_s *= math.exp(-(now - self._busy_at) / _BUSY_WINDOW_S)
        self._busy_at = now

    def _finished(self, work: int, run_s: float | None = None, cpu_s: float | None = None, *, foreground: bool = False) -> None:
        """A call left the queue; ``cpu_s`` when it ran, ``run_s`` when it ran to the end (it feeds the estimate)."""
        with self._cond:
            self._backlog -= work
            if cpu_s is not None:
                self._cpu_s += cpu_s
                self._runs += 1
            if run_s is not None:
                per_unit = run_s / work
                self._unit_s = per_unit if self._unit_s is None else (1 - _ALPHA) * self._unit_s + _ALPHA * per_unit
                if foreground:
                    self._decay(time.monotonic())
                    self._busy_s += run_s

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
            later = list(self._later)
            self._waiting.clear()
            self._later.clear()
            self._later_units = 0
            self._cond.notify_all()
        for call in waiting:
            if call.future.cancel():
                self._finished(call.work)
        for call in later:
            call.future.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
