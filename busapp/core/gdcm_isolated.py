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
"""

from __future__ import annotations

import importlib
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_RUNNER_ATTRS = (
    "transfer_syntax", "photometric_interpretation", "bits_stored", "bits_allocated",
    "pixel_representation", "rows", "columns", "samples_per_pixel", "planar_configuration",
)
_RUNNER_OPTIONS = ("jls_precision", "j2k_precision")
CHILD_TIMEOUT_S = 30.0  # as imageio.DECODE_TIMEOUT_S; here the runaway decode can really be stopped

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


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn: no copy of the parent's threads or Qt state in the child (fork is unsafe there)
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


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
        future = _get_pool().submit(_child_decode, module, func, bytes(src), attrs, options)
        frame, changes = future.result(timeout=CHILD_TIMEOUT_S)
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
