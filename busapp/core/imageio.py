"""Opening image files for display and analysis (Qt-free).

Every failure is an ``ImageLoadError`` whose message a clinician can read; nothing here writes to
or modifies the input file: it is read once, read-only, into memory and decoded from there.

Formats: PNG, JPEG, BMP, TIFF through Pillow (``busapp.core.raster``) and DICOM through pydicom
(``busapp.core.dicom``). Guards: regular files only (a FIFO or device would block the read forever),
``MAX_FILE_BYTES`` before reading, ``MAX_PIXELS`` and the memory budget (``check_memory``) per frame
before decoding (decompression bombs), and ``DECODE_TIMEOUT_S`` of processor time for reading and
decoding (plus a generous wall-clock limit), so that a loaded machine does not refuse healthy files.
docs/threat-model.md lists these promises and the tests that check them.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from busapp.core import offline
from busapp.core.spacing import UltrasoundRegion, bbox_of_mask, spacing_for_mask, spacing_for_region

offline.block_http_clients()  # before anything here imports pydicom

__all__ = [
    "DECODE_TIMEOUT_S",
    "MAX_FILE_BYTES",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "FrameSequence",
    "ImageLoadError",
    "LoadedImage",
    "UltrasoundRegion",
    "bbox_of_mask",
    "check_memory",
    "find_images",
    "load_image",
    "skipped_summary",
    "spacing_for_mask",
    "spacing_for_region",
]

MAX_PIXELS = 100_000_000  # decompression-bomb guard: ~10k x 10k per frame (grey; colour is smaller, below)
MAX_FILE_BYTES = 1 << 30  # 1 GiB: raster files are read into memory whole, DICOM pixel data once
MAX_FRAMES = 10_000  # cine loops / TIFF pages
DECODE_TIMEOUT_S = 30.0  # processor seconds; a healthy file takes well under 1 s
# The wall-clock limit is this many times the processor-time limit: a decode that waits for the CPU
# on a busy machine is not runaway, one that neither computes nor finishes (a stuck read) is.
WALL_FACTOR = 4.0

# Memory: busapp promises a peak RSS <= 1.5 GB for any input (benchmarks/bench_bombs.py). One frame's
# decode + display conversion + the analysis' grey conversion may use WORK_BYTES; the rest is for the
# app, the model and Qt. Bytes per pixel at the peak of that chain, measured by the benchmark:
WORK_BYTES = 1 << 30
BYTES_PER_PIXEL = {"grey": 4, "grey16": 24, "colour": 56}  # colour: 48 measured, + margin for the GUI
_KIND_WORDS = {"grey": "8-bit grey", "grey16": "16-bit or wider grey", "colour": "colour"}
FRAME_CACHE_BYTES = 256 << 20  # decoded cine frames kept in memory

RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})

# Metadata keys that never identify a patient: the only ones safe for logs and exports.
SAFE_METADATA_KEYS = frozenset(
    {
        "format",
        "modality",
        "manufacturer",
        "model_name",
        "transfer_syntax",
        "photometric",
        "sop_class",
        "bits_stored",
        "frame_time_ms",
        "n_frames",
        "mode",
    }
)


class ImageLoadError(Exception):
    """The file cannot be shown or analysed; ``str(e)`` is the message for the user.

    ``detail`` holds a short technical reason (exception type, never DICOM values) for support.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def check_memory(name: str, width: int, height: int, kind: str) -> None:
    """Refuse, before decoding, a frame whose decode and conversions would exceed ``WORK_BYTES``.

    ``kind``: "grey" (8-bit), "grey16" (16-bit or wider grey) or "colour".
    """
    per_pixel = BYTES_PER_PIXEL[kind]
    if width * height * per_pixel > WORK_BYTES:
        limit_mp = min(MAX_PIXELS, WORK_BYTES // per_pixel) / 1e6
        raise ImageLoadError(
            f"{name}: the image is too large to open within busapp's memory limit ({width} x {height} pixels; "
            f"busapp opens {_KIND_WORDS[kind]} images up to {limit_mp:.0f} megapixels).",
            detail="memory budget",
        )


T = TypeVar("T")


def _own_cpu_clock() -> int | None:
    """The calling thread's CPU-time clock id (None where the OS has none).

    Taken by the thread itself: a clock id names a kernel thread, so reading it after the thread
    has ended fails cleanly, unlike asking pthreads about a thread that may be gone.
    """
    try:
        return time.pthread_getcpuclockid(threading.get_ident())
    except (AttributeError, OSError):  # Windows, some macOS builds
        return None


def _clock_s(clock: int | None) -> float | None:
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread has ended
        return None


def run_with_time_limit(fn: Callable[[], T], timeout_s: float, name: str) -> T:
    """Run ``fn`` in a daemon thread; give up with ``ImageLoadError`` once it has used ``timeout_s``
    seconds of processor time, or ``WALL_FACTOR`` times that in wall-clock time.

    Processor time, not wall time, decides: on a loaded machine a healthy decode waits for the CPU
    and still finishes; the wall limit catches what uses no CPU but never ends (a stuck read).
    Where the OS cannot measure a thread's CPU time, the wall limit is ``timeout_s`` itself.
    Python cannot kill a thread, so a runaway decode keeps running in the background until it
    ends, but the caller (GUI, CLI) gets control and a message back. The pixel, memory and
    file-size limits make such runaway decodes bounded in the first place.
    """
    result: dict[str, Any] = {}
    started = threading.Event()

    def target() -> None:
        result["clock"] = _own_cpu_clock()
        started.set()
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the caller's thread below
            result["error"] = e

    t = threading.Thread(target=target, name="busapp-decode", daemon=True)
    start = time.monotonic()
    t.start()
    started.wait(timeout_s)
    clock = result.get("clock")
    wall_limit = timeout_s * WALL_FACTOR if clock is not None else timeout_s
    poll = min(0.25, max(timeout_s / 20, 0.005))
    while True:
        t.join(poll)
        if not t.is_alive():
            break
        cpu = _clock_s(clock)
        if (cpu is not None and cpu > timeout_s) or time.monotonic() - start > wall_limit:
            raise ImageLoadError(
                f"{name}: reading and decoding took longer than {timeout_s:g} seconds, so busapp stopped. "
                "The file may be damaged or unusually large.",
                detail="timeout",
            )
    if "error" in result:
        raise result["error"]
    return result["value"]


class FrameSequence(Sequence[np.ndarray]):
    """Frames decoded on demand (cine loops, multi-page TIFF), with a small cache.

    Indexing decodes under the time limit; a damaged frame raises ``ImageLoadError``.
    """

    def __init__(self, n: int, decode: Callable[[int], np.ndarray], name: str, first: np.ndarray | None = None,
                 cache_size: int = 16) -> None:
        self._n = n
        self._decode = decode
        self._name = name
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._cache_bytes = FRAME_CACHE_BYTES  # large frames: fewer of them, within the memory budget
        self._lock = threading.Lock()
        if first is not None:
            self._cache[0] = first

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = int(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"frame {index} out of range (0..{self._n - 1})")
        with self._lock:
            if i in self._cache:
                self._cache.move_to_end(i)
                return self._cache[i]
            frame = run_with_time_limit(lambda: self._decode(i), DECODE_TIMEOUT_S, self._name)
            self._cache[i] = frame
            while len(self._cache) > 1 and (len(self._cache) > self._cache_size or
                                            sum(f.nbytes for f in self._cache.values()) > self._cache_bytes):
                self._cache.popitem(last=False)
            return frame


@dataclass
class LoadedImage:
    path: Path
    frames: Sequence[np.ndarray] = field(repr=False)  # uint8, HxW grey or HxWx3 RGB, for display
    source_format: str
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) mm per pixel, image-wide, if trusted
    spacing_source: str | None = None
    bit_depth: int = 8
    # May hold patient identifiers (DICOM): show them, never log or export them (see safe_metadata()).
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    # Ultrasound calibration regions (DICOM); use spacing_for_region(), not pixel_spacing_mm, for them.
    us_regions: list[UltrasoundRegion] = field(default_factory=list, repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def frame(self, index: int = 0) -> np.ndarray:
        return self.frames[index]

    def grey(self, index: int = 0) -> np.ndarray:
        """The frame as the model sees it before letterboxing (the one preprocessing path)."""
        from busapp.core.preprocess import to_grey_u8

        return to_grey_u8(self.frame(index))

    @property
    def width(self) -> int:
        return self.frames[0].shape[1]

    @property
    def height(self) -> int:
        return self.frames[0].shape[0]

    def safe_metadata(self) -> dict[str, Any]:
        """Metadata without anything that could identify the patient: fit for logs and exports."""
        return {k: v for k, v in self.metadata.items() if k in SAFE_METADATA_KEYS}


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _not_regular_reason(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for test, words in _NOT_REGULAR:
        if test(mode):
            return words
    return "not an ordinary file"


def _open_regular(path: Path, check_size: bool = True) -> tuple[Any, int]:
    """Open ``path`` read-only after checking that it is a regular file of a size busapp opens.

    Opened non-blocking and checked on the open descriptor, so a FIFO (or a file swapped for one
    after a check by name) can never block the read; a regular file ignores the flag.
    """
    name = path.name
    try:
        if not os.path.lexists(path):
            raise ImageLoadError(f"{name}: the file does not exist.", detail="missing")
        if path.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image.", detail="directory")
        st = path.stat()
        kind = _not_regular_reason(st.st_mode)
        if kind is None:
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
            fd = os.open(path, flags)
            st = os.fstat(fd)
            kind = _not_regular_reason(st.st_mode)
            if kind is not None:
                os.close(fd)
        if kind is not None:
            raise ImageLoadError(f"{name}: is {kind}, not an image file, so busapp does not read it.",
                                 detail="not a regular file")
        size = st.st_size
        if check_size and size > MAX_FILE_BYTES:
            os.close(fd)
            raise ImageLoadError(
                f"{name}: the file is too large to open ({size / 2**20:.0f} MB; "
                f"busapp opens files up to {MAX_FILE_BYTES // 2**20} MB).",
                detail="file size",
            )
        return os.fdopen(fd, "rb"), size
    except PermissionError:
        raise ImageLoadError(f"{name}: busapp is not allowed to read this file (permission denied).",
                             detail="permission") from None
    except FileNotFoundError:
        raise ImageLoadError(f"{name}: the file does not exist.", detail="missing") from None
    except OSError as e:
        raise ImageLoadError(f"{name}: the file could not be read from disk.", detail=type(e).__name__) from None


def _read_rest(path: Path, f: Any, head: bytes) -> bytes:
    try:
        return head + f.read(MAX_FILE_BYTES + 1 - len(head))
    except OSError as e:
        raise ImageLoadError(f"{path.name}: the file could not be read from disk.", detail=type(e).__name__) from None


def load_image(path: str | Path) -> LoadedImage:
    """Open a PNG/JPEG/BMP/TIFF/DICOM file; raises ``ImageLoadError`` with a readable message.

    Reading and decoding both run under the time limit (a slow or stuck disk is refused too).
    """
    path = Path(path)
    offline.block_http_clients()
    return run_with_time_limit(lambda: _load(path), DECODE_TIMEOUT_S, path.name)


def _load(path: Path) -> LoadedImage:
    from busapp.core import dicom

    f, _size = _open_regular(path)
    with f:  # read-only; closed before decoding starts (DICOM: once the dataset is parsed)
        try:
            head = f.read(4096)
        except OSError as e:
            raise ImageLoadError(f"{path.name}: the file could not be read from disk.",
                                 detail=type(e).__name__) from None
        if not head:
            raise ImageLoadError(f"{path.name}: the file is empty.", detail="empty")
        if dicom.looks_like_dicom(head):
            # pydicom reads the pixel data from the file once, instead of from a second copy in memory.
            f.seek(0)
            return _guarded(path, lambda: dicom.load_dicom(path, f))
        data = _read_rest(path, f, head)
    return _decode(path, data)


def _guarded(path: Path, fn: Callable[[], LoadedImage]) -> LoadedImage:
    try:
        return fn()
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(f"{path.name}: there is not enough memory to open this image.", detail="memory") from None
    except Exception as e:  # last safety net: an untrusted file must never crash the caller
        raise ImageLoadError(f"{path.name}: the file is damaged or incomplete and cannot be opened.",
                             detail=type(e).__name__) from None


def _decode(path: Path, data: bytes) -> LoadedImage:
    return _guarded(path, lambda: _decode_by_kind(path, data))


def _decode_by_kind(path: Path, data: bytes) -> LoadedImage:
    from busapp.core import dicom, raster

    if dicom.looks_like_dicom(data):
        return dicom.load_dicom(path, data)
    if path.suffix.lower() in DICOM_SUFFIXES and not raster.looks_like_raster(data):
        raise ImageLoadError(f"{path.name}: this is not a valid DICOM file (it is damaged or not DICOM at all).",
                             detail="no DICOM header")
    return raster.load_raster(path, data)


# --- folders -------------------------------------------------------------------------------------


def _sniff(path: Path) -> str | None:
    """None if ``path`` looks like an image busapp opens, else the reason to skip it."""
    from busapp.core import dicom, raster

    name = path.name
    if name.startswith(".") or name.lower() in ("thumbs.db", "desktop.ini"):
        return "hidden or system file"
    if name.upper() == "DICOMDIR":
        return "DICOMDIR (a DICOM folder index, not an image)"
    try:
        st = path.stat()
        kind = _not_regular_reason(st.st_mode)
        if kind is not None:
            return f"not an ordinary file ({kind})"
        if st.st_size == 0:
            return "empty file"
        f, _ = _open_regular(path, check_size=False)  # too large: said when it is opened
        with f:
            head = f.read(512)
    except ImageLoadError as e:
        return "cannot be read (permission denied)" if e.detail == "permission" else "cannot be read"
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError:
        return "cannot be read"
    if dicom.looks_like_dicom(head) or raster.looks_like_raster(head):
        return None
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return f"named {suffix} but its content is not DICOM"
    if suffix in RASTER_SUFFIXES:
        return f"named {suffix} but its content is not a {suffix[1:].upper()} image"
    return "not an image file"


def find_images(paths: Iterable[Path | str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into image files and skipped (path, reason) pairs.

    Decided by content, not only by name: DICOM files often have no extension. Symbolic links
    to folders are not followed (no loops); the order is stable (sorted per folder).
    """
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def visit_file(p: Path) -> None:
        key = p.resolve() if p.exists() else p
        if key in seen:
            return
        seen.add(key)
        reason = _sniff(p)
        if reason is None:
            images.append(p)
        else:
            skipped.append((p, reason))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    visit_file(Path(root) / f)
        elif p.exists():
            visit_file(p)
        else:
            skipped.append((p, "does not exist"))
    return images, skipped


def skipped_summary(skipped: Sequence[tuple[Path, str]]) -> str:
    """One line for the user, e.g. 'Skipped 3 files: 2 not an image file, 1 empty file.'"""
    if not skipped:
        return ""
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    noun = "file" if len(skipped) == 1 else "files"
    return f"Skipped {len(skipped)} {noun}: {parts}."
