"""The GUI's one background-work pattern on its own: the Qt-free executor and the Qt bridge."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from PySide6.QtCore import QThread

from busapp.gui.qt_tasks import TaskBridge
from busapp.gui.tasks import SerialExecutor, Task, TaskCancelled


@pytest.fixture
def executor():
    ex = SerialExecutor("test-work")
    yield ex
    ex.shutdown(2.0)


def _blocker(gate: threading.Event):
    def fn(task: Task) -> str:
        gate.wait(10)
        return "blocker"

    return fn


def test_priority_order_and_superseding_unstarted_work(executor: SerialExecutor) -> None:
    gate = threading.Event()
    ran: list[str] = []

    def job(task: Task, name: str) -> str:
        ran.append(name)
        return name

    first = executor.submit(_blocker(gate))  # keeps the thread busy while the rest queue up
    late = executor.submit(job, "file", priority=2)
    old_frame = executor.submit(job, "frame 1", key="frame", priority=1)
    new_frame = executor.submit(job, "frame 4", key="frame", priority=1)
    model = executor.submit(job, "model", priority=0)
    assert old_frame.cancelled and old_frame.future.cancelled()
    gate.set()
    assert [t.result(5) for t in (first, model, new_frame, late)] == ["blocker", "model", "frame 4", "file"]
    assert ran == ["model", "frame 4", "file"]  # the superseded request never ran


def test_running_work_is_not_superseded_but_cancel_stops_it(executor: SerialExecutor) -> None:
    started, gate = threading.Event(), threading.Event()

    def long_job(task: Task) -> str:
        started.set()
        gate.wait(10)
        task.check()  # between stages
        return "done"

    running = executor.submit(long_job, key="k")
    started.wait(5)
    newer = executor.submit(lambda t: "newer", key="k")
    assert not running.cancelled  # its result is still valid for what it was asked
    executor.cancel("k", running=False)  # drops only the unstarted one
    assert newer.cancelled and not running.cancelled
    gate.set()
    assert running.result(5) == "done"

    started.clear()
    gate.clear()
    stopped = executor.submit(long_job, key="j")
    started.wait(5)
    assert executor.cancel("j")
    gate.set()
    with pytest.raises(TaskCancelled):
        stopped.result(5)


def test_exceptions_reach_the_future_as_objects(executor: SerialExecutor) -> None:
    class Boom(Exception):
        pass

    def fails(task: Task) -> None:
        raise Boom("disk on fire")

    t = executor.submit(fails)
    err = t.future.exception(5)
    assert isinstance(err, Boom) and str(err) == "disk on fire"
    assert executor.submit(lambda task: 42).result(5) == 42  # the thread survived


def test_shutdown_does_not_wait_for_long_work() -> None:
    ex = SerialExecutor("test-shutdown")
    started = threading.Event()

    def stubborn(task: Task) -> None:  # ignores cancellation, like a long decode in C code
        started.set()
        time.sleep(3)

    ex.submit(stubborn)
    queued = ex.submit(lambda task: "never")
    started.wait(5)
    t0 = time.perf_counter()
    assert ex.shutdown(0.2) is False  # still running: reported, not waited for
    assert time.perf_counter() - t0 < 1.0
    assert queued.cancelled and queued.future.cancelled()
    assert ex._thread is not None and ex._thread.daemon  # cannot hold up the process's exit
    late = ex.submit(lambda task: "after")
    assert late.cancelled


def test_tasks_records_and_folder_scan_are_qt_free() -> None:
    code = ("import sys; sys.modules['PySide6'] = None\n"
            "import busapp.gui.tasks, busapp.gui.folder_scan, busapp.gui.records\n"
            "assert not any(m.startswith('PySide6') for m in sys.modules if sys.modules[m])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0, r.stderr


def test_batch_dialog_does_not_import_the_cli() -> None:
    code = ("import sys, busapp.gui.batch_dialog\n"
            "assert not [m for m in sys.modules if m.startswith('busapp.cli')], 'busapp.cli imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0, r.stderr


def test_bridge_delivers_results_progress_and_errors_on_the_gui_thread(qtbot, executor: SerialExecutor) -> None:
    bridge = TaskBridge()
    gui = QThread.currentThread()
    got: list[tuple[str, object, bool]] = []

    def job(task: Task, fail: bool) -> str:
        task.report("halfway")
        if fail:
            raise ValueError("bad pixel")
        return "result"

    def note(kind: str):
        return lambda v: got.append((kind, v, QThread.currentThread() is gui))

    for fail in (False, True):
        bridge.watch(executor.submit(job, fail), on_result=note("result"), on_error=note("error"),
                     on_progress=note("progress"))
    qtbot.waitUntil(lambda: len(got) == 4, timeout=5000)
    assert [k for k, _, _ in got] == ["progress", "result", "progress", "error"]
    assert all(on_gui for _, _, on_gui in got)
    err = got[3][1]
    assert isinstance(err, ValueError) and str(err) == "bad pixel"  # the object, not a string


def test_stale_results_never_reach_the_callback(qtbot, executor: SerialExecutor) -> None:
    """A cancel on the GUI thread wins even over a result already computed and on its way."""
    bridge = TaskBridge()
    got: list[object] = []
    t = bridge.watch(executor.submit(lambda task: "stale"), on_result=got.append, on_error=got.append)
    t.future.result(5)  # finished on the worker; its delivery is queued on the GUI thread
    t.cancel()
    fresh = bridge.watch(executor.submit(lambda task: "fresh"), on_result=got.append)
    fresh.future.result(5)
    qtbot.waitUntil(lambda: got == ["fresh"], timeout=5000)
    qtbot.wait(50)
    assert got == ["fresh"]


def test_progress_reported_before_a_listener_is_added_is_not_lost(executor: SerialExecutor) -> None:
    """The thread may run a task between ``submit`` and ``watch``: its early values are replayed."""
    reported = threading.Event()

    def job(task: Task) -> str:
        task.report("decoded")
        reported.set()
        return "result"

    t = executor.submit(job)
    assert reported.wait(5) and t.result(5) == "result"
    got: list[object] = []
    t.add_progress_callback(lambda _t, v: got.append(v))
    assert got == ["decoded"]
    t.add_progress_callback(lambda _t, v: got.append(("second", v)))  # only the first gets the replay
    assert got == ["decoded"]
