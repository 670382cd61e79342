"""Opening image files for display and analysis (Qt-free).

Every failure is an ``ImageLoadError`` whose message a clinician can read; nothing here writes to
or modifies the input file: it is read once, read-only, into memory and decoded from there.

Formats: PNG, JPEG, BMP, TIFF through Pillow (``busapp.core.raster``) and DICOM through pydicom
(``busapp.core.dicom``). Guards: ``MAX_FILE_BYTES`` before reading, ``MAX_PIXELS`` per frame before
decoding (decompression bombs), and ``DECODE_TIMEOUT_S`` for any single decode.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from busapp.core.spacing import UltrasoundRegion, bbox_of_mask, spacing_for_mask, spacing_for_region

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
    "find_images",
    "load_image",
    "skipped_summary",
    "spacing_for_mask",
    "spacing_for_region",
]

MAX_PIXELS = 100_000_000  # decompression-bomb guard: ~10k x 10k per frame
MAX_FILE_BYTES = 1 << 30  # 1 GiB: the file is read into memory whole
MAX_FRAMES = 10_000  # cine loops / TIFF pages
DECODE_TIMEOUT_S = 30.0  # generous: CI and clinic PCs can be slow; a healthy file takes well under 1 s

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


T = TypeVar("T")


def run_with_time_limit(fn: Callable[[], T], timeout_s: float, name: str) -> T:
    """Run ``fn`` in a daemon thread; give up with ``ImageLoadError`` after ``timeout_s``.

    Python cannot kill a thread, so a runaway decode keeps running in the background until it
    ends, but the caller (GUI, CLI) gets control and a message back. The pixel and file-size
    limits make such runaway decodes bounded in the first place.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the caller's thread below
            result["error"] = e

    t = threading.Thread(target=target, name="busapp-decode", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise ImageLoadError(
            f"{name}: decoding took longer than {timeout_s:g} seconds, so busapp stopped. "
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
            if len(self._cache) > self._cache_size:
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


def _read_bytes(path: Path) -> bytes:
    name = path.name
    try:
        if not path.exists():
            raise ImageLoadError(f"{name}: the file does not exist.", detail="missing")
        if path.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image.", detail="directory")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageLoadError(
                f"{name}: the file is too large to open ({size / 2**20:.0f} MB; "
                f"busapp opens files up to {MAX_FILE_BYTES // 2**20} MB).",
                detail="file size",
            )
        with open(path, "rb") as f:  # read-only, closed before decoding starts
            data = f.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise ImageLoadError(f"{name}: busapp is not allowed to read this file (permission denied).",
                             detail="permission") from None
    except OSError as e:
        raise ImageLoadError(f"{name}: the file could not be read from disk.", detail=type(e).__name__) from None
    if not data:
        raise ImageLoadError(f"{name}: the file is empty.", detail="empty")
    return data


def load_image(path: str | Path) -> LoadedImage:
    """Open a PNG/JPEG/BMP/TIFF/DICOM file; raises ``ImageLoadError`` with a readable message."""
    path = Path(path)
    data = _read_bytes(path)
    return run_with_time_limit(lambda: _decode(path, data), DECODE_TIMEOUT_S, path.name)


def _decode(path: Path, data: bytes) -> LoadedImage:
    try:
        return _decode_by_kind(path, data)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(f"{path.name}: there is not enough memory to open this image.", detail="memory") from None
    except Exception as e:  # last safety net: an untrusted file must never crash the caller
        raise ImageLoadError(f"{path.name}: the file is damaged or incomplete and cannot be opened.",
                             detail=type(e).__name__) from None


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
        if path.stat().st_size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(512)
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
