"""GDCM decodes run in a child process.

On some damaged codestreams GDCM calls the C library's ``abort()`` (found by the loader's fuzz
test): that ends the whole process, and no Python ``except`` can catch it. GDCM is the only
decoder busapp has for JPEG lossless and 12-bit JPEG Extended, and the last fallback for a few
other syntaxes, so its calls are made in a worker process: a crash there becomes a clear "damaged
file" message and the app goes on. The maintained decoders (Pillow, CharLS, OpenJPEG) that are
tried first still run in-process, so ordinary files pay nothing.

The functions here are pydicom decoder plugins (``func(src, runner) -> bytes``). The runner is not
picklable, so the child gets a copy of the attributes the GDCM functions read, and the options
they set are replayed onto the real runner afterwards.

The worker never outlives busapp (issue 28, item 10): it watches the pipe multiprocessing keeps to
its parent and exits when the parent is gone, and on Linux the kernel also kills it then
(``PR_SET_PDEATHSIG``, which also covers a worker stuck in native code). That signal follows the
*thread* that started the worker, so the worker is started from one long-lived thread, never from
a short-lived decode thread. multiprocessing's resource tracker ends once the worker and the
parent have both closed their end of its pipe. The worker's stderr goes to the null device: GDCM
prints codec messages there that are not for users (failures reach busapp as exceptions).
The child's limit is processor time (``CHILD_TIMEOUT_S``) plus ``imageio.WALL_FACTOR`` times that
in wall time, so that a loaded machine does not refuse healthy files.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_RUNNER_ATTRS = (
    "transfer_syntax", "photometric_interpretation", "bits_stored", "bits_allocated",
    "pixel_representation", "rows", "columns", "samples_per_pixel", "planar_configuration",
)
_RUNNER_OPTIONS = ("jls_precision", "j2k_precision")
CHILD_TIMEOUT_S = 30.0  # processor seconds, as imageio.DECODE_TIMEOUT_S; here a runaway decode can be stopped
PR_SET_PDEATHSIG = 1

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def is_available(uid: str) -> bool:
    """pydicom plugin hook: GDCM is installed and can decode ``uid``."""
    from pydicom.pixels.decoders import gdcm as pydicom_gdcm
    from pydicom.uid import JPEGExtended12Bit

    return pydicom_gdcm.is_available(uid) or (uid == JPEGExtended12Bit and pydicom_gdcm.HAVE_GDCM)


def _dependencies() -> dict[str, tuple[str, ...]]:
    from pydicom.pixels.decoders import gdcm as pydicom_gdcm

    return dict(pydicom_gdcm.DECODER_DEPENDENCIES)


DECODER_DEPENDENCIES = _dependencies()


class _RunnerCopy:
    """What the GDCM functions use of pydicom's DecodeRunner; records the options they set."""

    def __init__(self, attrs: dict[str, Any], options: dict[str, Any]) -> None:
        self.__dict__.update(attrs)
        self._options = options
        self.changes: dict[str, Any] = {}

    def get_option(self, name: str, default: Any = None) -> Any:
        return self.changes.get(name, self._options.get(name, default))

    def set_option(self, name: str, value: Any) -> None:
        self.changes[name] = value
        setattr(self, name, value)  # the runner's properties follow its options


def _child_decode(module: str, func: str, src: bytes, attrs: dict, options: dict) -> tuple[bytes, dict]:
    from busapp.core.dicom import silence_gdcm

    silence_gdcm()
    runner = _RunnerCopy(attrs, options)
    frame = getattr(importlib.import_module(module), func)(src, runner)
    return bytes(frame), runner.changes


def _die_with_parent() -> None:
    """Worker initializer: end this process when busapp ends, however it ends."""
    try:  # GDCM's messages: not for users, and not to be mixed into the app's stderr
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except Exception:  # no libc prctl: the pipe below still works
            pass
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if not parent.is_alive():  # died before the signal was armed
        os._exit(1)

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])  # readable (EOF) once the parent process is gone
        os._exit(1)

    threading.Thread(target=watch, name="busapp-parent-watch", daemon=True).start()


def _ready() -> int:
    return os.getpid()


# One long-lived thread starts the worker (PR_SET_PDEATHSIG fires when the starting thread ends).
_starter_jobs: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()
_starter: threading.Thread | None = None


def _starter_loop() -> None:
    while True:
        job, fut = _starter_jobs.get()
        try:
            fut.set_result(job())
        except BaseException as e:  # handed to the waiting thread
            fut.set_exception(e)


def _on_starter_thread(job: Callable[[], Any]) -> Any:
    global _starter
    if _starter is None or not _starter.is_alive():
        _starter = threading.Thread(target=_starter_loop, name="busapp-gdcm-starter", daemon=True)
        _starter.start()
    fut: Future = Future()
    _starter_jobs.put((job, fut))
    return fut.result()


def _new_pool() -> ProcessPoolExecutor:
    # spawn: no copy of the parent's threads or Qt state in the child (fork is unsafe there)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent)
    pool.submit(_ready).result(timeout=120)  # the worker process starts here, on the starter thread
    return pool


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = _on_starter_thread(_new_pool)
        return _pool


def worker_pids() -> list[int]:
    """Process ids of the running GDCM worker(s), for tests and diagnostics."""
    pool = _pool
    return sorted(getattr(pool, "_processes", {}) or {}) if pool is not None else []


def _cpu_seconds(pid: int) -> float | None:
    """User + system processor time of process ``pid`` (Linux /proc), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _wait(future: Future, pids: list[int]) -> Any:
    """The future's result, within CHILD_TIMEOUT_S of the worker's processor time (and a wall limit)."""
    from busapp.core.imageio import WALL_FACTOR

    start = time.monotonic()
    base = {pid: _cpu_seconds(pid) for pid in pids}
    measurable = bool(base) and all(v is not None for v in base.values())
    wall_limit = CHILD_TIMEOUT_S * WALL_FACTOR if measurable else CHILD_TIMEOUT_S
    while True:
        try:
            return future.result(timeout=0.25)
        except FutureTimeout:
            pass
        used = sum((_cpu_seconds(p) or 0.0) - (b or 0.0) for p, b in base.items()) if measurable else 0.0
        if used > CHILD_TIMEOUT_S or time.monotonic() - start > wall_limit:
            raise TimeoutError


def _discard_pool(kill: bool) -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    if kill:  # a decode that hangs: stop its process, the executor has no public call for it
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _run(module: str, func: str, src: bytes, runner: Any) -> bytes:
    attrs = {a: getattr(runner, a) for a in _RUNNER_ATTRS}
    options = {o: runner.get_option(o) for o in _RUNNER_OPTIONS if runner.get_option(o) is not None}
    try:
        pool = _get_pool()
        future = pool.submit(_child_decode, module, func, bytes(src), attrs, options)
        frame, changes = _wait(future, sorted(getattr(pool, "_processes", {}) or {}))
    except BrokenProcessPool:
        _discard_pool(kill=False)
        raise ValueError("GDCM stopped on damaged image data") from None
    except TimeoutError:
        _discard_pool(kill=True)
        raise ValueError("GDCM did not finish decoding in time") from None
    for name, value in changes.items():
        runner.set_option(name, value)
    return frame


def decode_gdcm(src: bytes, runner: Any) -> bytes:
    """pydicom's GDCM decoder, in the child process."""
    return _run("pydicom.pixels.decoders.gdcm", "_decode_frame", src, runner)


def decode_gdcm12(src: bytes, runner: Any) -> bytes:
    """busapp's 12-bit JPEG Extended GDCM decoder, in the child process."""
    return _run("busapp.core.dicom", "_decode_jpeg12_gdcm", src, runner)
