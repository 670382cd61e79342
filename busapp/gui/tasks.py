"""Background work without Qt: one serial executor, futures, and cancellation of superseded work.

The one pattern every background job of the GUI uses (opening and analysing images, cine frames,
folder scans, batch runs), after napari's layer slicer, Orange's ``concurrent`` module and
superqt's ``thread_worker``:

* The GUI thread calls ``SerialExecutor.submit(fn, *args, key=..., priority=...)`` and gets a
  ``Task`` back at once; ``task.future`` is a ``concurrent.futures.Future``.
* One daemon thread runs the submissions one at a time, lowest ``priority`` first, in submission
  order within a priority. ``fn`` gets the ``Task`` as its first argument: ``task.check()`` raises
  ``TaskCancelled`` once the task was cancelled (call it between stages), ``task.report(value)``
  hands an intermediate value (e.g. the decoded image before the model runs) to progress listeners.
* A submission with the ``key`` of an earlier one that has not started yet supersedes it: the
  earlier one is cancelled and never runs. Work already running is not interrupted by a newer
  request (its result is still valid for what it was asked); ``cancel`` stops it at its next
  ``check()`` and marks it stale.
* A cancelled task is stale: whatever it returns or raises is never delivered (``qt_tasks`` checks
  ``task.cancelled`` on the GUI thread right before calling back, after any cancel made there).
* ``shutdown(timeout_s)`` cancels everything and waits at most ``timeout_s`` for the running
  function; the thread is a daemon, so a long decode cannot hold up quitting.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class TaskCancelled(Exception):
    """Raised by ``Task.check()`` in a task that was cancelled; its result is discarded."""


class Task:
    """One submission: its future, its cancellation flag and its progress listeners."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, key: Hashable | None,
                 priority: int) -> None:
        self.future: Future = Future()
        self.key = key
        self.priority = priority
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._cancel = threading.Event()
        self._progress: list[Callable[[Task, Any], None]] = []
        self._early: list[Any] | None = []  # reported before any listener was added: replayed to it
        self._progress_lock = threading.Lock()

    # -- either thread ---------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once cancelled or superseded: the task's outcome is stale."""
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """The flag as an ``Event``, for Qt-free code that polls one (``core.batch.run_batch``)."""
        return self._cancel

    def cancel(self) -> None:
        self._cancel.set()
        self.future.cancel()  # only succeeds if it has not started

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        """``fn(task)`` when the task ends (in the worker thread, or at once if it has ended)."""
        self.future.add_done_callback(lambda _f: fn(self))

    def add_progress_callback(self, fn: Callable[[Task, Any], None]) -> None:
        """``fn(task, value)`` for each ``report(value)``, in the worker thread; values reported
        before the first listener was added (the task may start at once) are replayed to it, here."""
        with self._progress_lock:
            self._progress.append(fn)
            early, self._early = self._early, None
        for value in early or ():
            fn(self, value)

    def result(self, timeout: float | None = None) -> Any:
        return self.future.result(timeout)

    # -- worker thread -----------------------------------------------------------------------------
    def check(self) -> None:
        if self._cancel.is_set():
            raise TaskCancelled

    def report(self, value: Any) -> None:
        self.check()
        with self._progress_lock:
            if self._early is not None:
                self._early.append(value)
                return
            listeners = list(self._progress)
        for fn in listeners:
            fn(self, value)

    def _run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            value = self._fn(self, *self._args, **self._kwargs)
        except BaseException as e:  # every outcome reaches the future, never the thread's top
            self.future.set_exception(e)
        else:
            self.future.set_result(value)
        finally:
            self._fn = self._args = self._kwargs = None  # type: ignore[assignment]  # free inputs early


class SerialExecutor:
    """Runs submitted functions one at a time on one daemon thread (started on first use)."""

    def __init__(self, name: str = "busapp-work") -> None:
        self._name = name
        self._cv = threading.Condition()
        self._heap: list[tuple[int, int, Task]] = []
        self._seq = itertools.count()
        self._latest: dict[Hashable, Task] = {}  # key -> newest task with it, until that one ends
        self._running: Task | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any, key: Hashable | None = None, priority: int = 0,
               **kwargs: Any) -> Task:
        """Queue ``fn(task, *args, **kwargs)``; an unstarted task with the same ``key`` is cancelled."""
        task = Task(fn, args, kwargs, key, priority)
        with self._cv:
            if self._closed:
                task.cancel()
                return task
            if key is not None:
                old = self._latest.get(key)
                if old is not None and old is not self._running:
                    old.cancel()
                self._latest[key] = task
            heapq.heappush(self._heap, (priority, next(self._seq), task))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify()
        return task

    def cancel(self, key: Hashable, *, running: bool = True) -> bool:
        """Cancel the newest task with ``key`` (if ``running`` is False, only if it has not started)."""
        with self._cv:
            task = self._latest.get(key)
            if task is None or (task is self._running and not running):
                return False
            task.cancel()
            return True

    def pending(self) -> int:
        """Tasks queued and not cancelled (the running one excluded)."""
        with self._cv:
            return sum(not t.cancelled for _, _, t in self._heap)

    def is_busy(self) -> bool:
        with self._cv:
            return self._running is not None or any(not t.cancelled for _, _, t in self._heap)

    def shutdown(self, timeout_s: float = 0.5) -> bool:
        """Cancel all work; True if the running function (if any) ended within ``timeout_s``."""
        with self._cv:
            self._closed = True
            for _, _, t in self._heap:
                t.cancel()
            self._heap.clear()
            if self._running is not None:
                self._running.cancel()
            self._cv.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                _, _, task = heapq.heappop(self._heap)
                if task.cancelled:
                    task.future.cancel()
                    self._forget(task)
                    continue
                self._running = task
            try:
                task._run()
            except BaseException:  # pragma: no cover - _run catches everything; keep the loop alive
                log.exception("background task crashed")
            finally:
                with self._cv:
                    self._running = None
                    self._forget(task)

    def _forget(self, task: Task) -> None:
        if task.key is not None and self._latest.get(task.key) is task:
            del self._latest[task.key]
