"""The thin Qt side of ``tasks``: results, progress and exceptions of background tasks, on the GUI thread.

``TaskBridge`` is a QObject that lives in the GUI thread. ``bridge.watch(task, on_result=...,
on_error=..., on_progress=...)`` registers callbacks; the worker thread only emits a queued signal
to the bridge's slot, and the slot calls them in the GUI thread. ``on_error`` receives the
exception object itself (the UI decides how to word it). A task that was cancelled, superseded or
whose bridge is gone delivers nothing: the check runs in the GUI thread right before the callback,
so a cancel issued there beforehand always wins over a result already on its way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from busapp.gui.tasks import Task, TaskCancelled


class TaskBridge(QObject):
    _arrived = Signal(object, object, object)  # task, callback, value

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # A bound @Slot method of a GUI-thread object: queued even though it is emitted elsewhere.
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def watch(
        self,
        task: Task,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Task:
        if on_progress is not None:
            task.add_progress_callback(lambda t, value: self._post(t, on_progress, value))

        def done(t: Task) -> None:
            f = t.future
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                if on_result is not None:
                    self._post(t, on_result, f.result())
            elif not isinstance(exc, TaskCancelled) and on_error is not None:
                self._post(t, on_error, exc)

        task.add_done_callback(done)
        return task

    def _post(self, task: Task, fn: Callable[[Any], None], value: Any) -> None:
        if task.cancelled:
            return
        try:
            self._arrived.emit(task, fn, value)
        except RuntimeError:  # the bridge was deleted (window closed): nobody to tell
            pass

    @Slot(object, object, object)
    def _deliver(self, task: Task, fn: Callable[[Any], None], value: Any) -> None:
        if not task.cancelled:
            fn(value)
