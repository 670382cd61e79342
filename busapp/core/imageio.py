"""Opening image files for display and analysis (Qt-free).

Every failure is an ``ImageLoadError`` whose message a clinician can read; nothing here writes to
or modifies the input file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 100_000_000  # decompression-bomb guard: ~10k x 10k


class ImageLoadError(Exception):
    """The file cannot be shown or analysed; ``str(e)`` is the message for the user."""


@dataclass
class LoadedImage:
    path: Path
    frames: list[np.ndarray] = field(repr=False)  # uint8, HxW grey or HxWx3 RGB, for display
    source_format: str
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) mm per pixel, if trusted
    spacing_source: str | None = None
    bit_depth: int = 8
    # May hold patient identifiers (DICOM): show them, never log or export them.
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def frame(self, index: int = 0) -> np.ndarray:
        return self.frames[index]

    @property
    def width(self) -> int:
        return self.frames[0].shape[1]

    @property
    def height(self) -> int:
        return self.frames[0].shape[0]


def _display_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("L", "RGB"):
        return np.asarray(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        from busapp.core.preprocess import to_grey_u8

        return to_grey_u8(np.asarray(im))
    if im.mode in ("1", "LA", "P") and (im.mode != "P" or not _palette_is_colour(im)):
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def _palette_is_colour(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def load_image(path: str | Path) -> LoadedImage:
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path.name}: the file does not exist.")
    if path.is_dir():
        raise ImageLoadError(f"{path.name}: is a folder, not an image.")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageLoadError(
                    f"{path.name}: the image is too large ({im.width} x {im.height} pixels; "
                    f"busapp opens up to {MAX_PIXELS // 1_000_000} megapixels)."
                )
            fmt = im.format or "image"
            im = ImageOps.exif_transpose(im)
            bits = 16 if im.mode.startswith("I;16") or im.mode == "I" else 8
            frame = _display_array(im)
    except ImageLoadError:
        raise
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{path.name}: not an image file busapp can read.") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"{path.name}: the image file is damaged or incomplete ({e}).") from e
    return LoadedImage(path=path, frames=[np.ascontiguousarray(frame)], source_format=fmt, bit_depth=bits)
