"""PNG, JPEG, BMP and TIFF through Pillow, to uint8 grey or RGB display frames.

Only these Pillow plugins are tried (smaller attack surface, clearer messages). Raster files
carry no trusted physical pixel size: their DPI tags describe printing, not the body.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from busapp.core import completeness, imageio
from busapp.core.imageio import FrameSequence, ImageLoadError, LoadedImage

# MPO (multi-picture JPEG from cameras, opened by the JPEG plugin): frame 0 is the image.
FORMATS = ("PNG", "JPEG", "BMP", "DIB", "TIFF")  # JPEG also opens MPO
MULTI_FRAME_FORMATS = ("TIFF",)

_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a half-grey image
Image.init()  # register every plugin once, so that restricting to FORMATS finds them all


def _libtiff_paths() -> list[str]:
    """Where the libtiff that Pillow uses is: mapped into this process (Linux), or beside Pillow."""
    import glob
    import os
    import re

    from PIL import _imaging  # noqa: F401  (loads libtiff)

    found: list[str] = []
    try:
        with open("/proc/self/maps") as f:
            found = sorted(set(re.findall(r"(/\S*libtiff[^/\s]*\.so[^/\s]*)", f.read())))
    except OSError:
        pass
    pil_dir = os.path.dirname(Image.__file__)
    for pattern in ("../pillow.libs/libtiff*", ".dylibs/libtiff*"):
        found += glob.glob(os.path.join(pil_dir, pattern))
    return found


def silence_libtiff() -> bool:
    """libtiff prints warnings and errors about damaged files to stderr ("LZWDecode: Not enough
    data ..."), which users of the CLI see mixed into its output. Failures still reach busapp as
    exceptions from Pillow; only the printing is switched off. False where libtiff is not found
    as a separate library (e.g. linked into Pillow on Windows, where the GUI has no stderr)."""
    import ctypes

    for path in _libtiff_paths():
        try:
            lib = ctypes.CDLL(path)  # the library already loaded: same handlers
            for fn in (lib.TIFFSetErrorHandler, lib.TIFFSetWarningHandler):
                fn.restype = ctypes.c_void_p
                fn.argtypes = [ctypes.c_void_p]
                fn(None)
            return True
        except (OSError, AttributeError):
            continue
    return False


silence_libtiff()


def looks_like_raster(head: bytes) -> bool:
    return head.startswith(_MAGIC)


def _damaged(name: str, e: BaseException) -> ImageLoadError:
    return ImageLoadError(f"{name}: the image file is damaged or incomplete and cannot be shown.",
                          detail=f"{type(e).__name__}: {e}"[:200])


def memory_kind(mode: str) -> str:
    """The memory class (imageio.BYTES_PER_PIXEL) of a Pillow mode, by the path display_array takes."""
    if mode in ("1", "L"):
        return "grey"
    if mode.startswith("I") or mode == "F":
        return "grey16"
    return "colour"  # RGB, RGBA, LA and P (converted through RGB/RGBA), CMYK, ...


def _check_size(name: str, im: Image.Image) -> None:
    """Before decoding: pixels, then the memory the decode and conversions would need."""
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageLoadError(f"{name}: the image has no pixels.", detail="zero size")
    if w * h > imageio.MAX_PIXELS:
        raise ImageLoadError(
            f"{name}: the image is too large ({w} x {h} pixels; "
            f"busapp opens up to {imageio.MAX_PIXELS // 1_000_000} megapixels).",
            detail="pixel limit",
        )
    imageio.check_memory(name, w, h, memory_kind(im.mode))


def _incomplete(name: str, reason: str) -> ImageLoadError:
    return ImageLoadError(f"{name}: the image file is incomplete ({reason}); busapp does not show or analyse a partly decoded image.",
                          detail="incomplete")


def _check_whole(name: str, im: Image.Image, data: bytes) -> None:
    """After decoding: refuse data the decoder filled in (see busapp.core.completeness)."""
    fmt = im.format
    reason = None
    if fmt == "PNG":
        reason = completeness.png_missing_rows(data)
    elif fmt in ("JPEG", "MPO"):
        reason = completeness.jpeg_incomplete(data, np.asarray(im))
    if reason:
        raise _incomplete(name, reason)


def _palette_is_colour(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def display_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> uint8 HxW grey or HxWx3 RGB."""
    from busapp.core.preprocess import to_grey_u8

    mode = im.mode
    if mode in ("L", "RGB"):
        return np.asarray(im)
    if mode.startswith("I") or mode == "F":  # 16/32-bit grey, float
        return to_grey_u8(np.asarray(im))
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        # Transparent areas (outside the probe's fan) go to black, as the training data was prepared.
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        rgb = Image.alpha_composite(black, rgba).convert("RGB")
        return np.asarray(rgb.convert("L") if mode in ("LA", "La") else rgb)
    if mode == "P":
        return np.asarray(im.convert("RGB") if _palette_is_colour(im) else im.convert("L"))
    return np.asarray(im.convert("RGB"))  # CMYK, YCbCr, LAB, HSV


def _bit_depth(im: Image.Image) -> int:
    if im.mode.startswith("I;16"):
        return 16
    if im.mode in ("I", "F"):
        return 32
    if im.mode == "1":
        return 1
    return 8


def _frame(im: Image.Image, name: str, index: int, data: bytes) -> np.ndarray:
    if index:
        im.seek(index)
    _check_size(name, im)
    im.load()
    if index == 0:
        _check_whole(name, im, data)
    im = ImageOps.exif_transpose(im)  # camera/phone exports: show the way it was taken
    return np.ascontiguousarray(display_array(im))


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=FORMATS)


def load_raster(path: Path, data: bytes) -> LoadedImage:
    name = path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning etc.: our own limit applies
            im = _open(data)
            _check_size(name, im)
            fmt = "JPEG" if im.format == "MPO" else (im.format or "image")
            n = 1
            if fmt in MULTI_FRAME_FORMATS:
                n = int(getattr(im, "n_frames", 1) or 1)
                if n > imageio.MAX_FRAMES:
                    raise ImageLoadError(f"{name}: the file has too many pages ({n}; busapp opens up to "
                                         f"{imageio.MAX_FRAMES}).", detail="frame limit")
            bits = _bit_depth(im)
            mode = im.mode
            first = _frame(im, name, 0, data)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"{name}: not an image file busapp can read (it opens PNG, JPEG, BMP, TIFF and DICOM).",
            detail="unidentified",
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: the image is too large to open safely.", detail=str(e)[:200]) from None
    except Exception as e:  # an untrusted file: any decoder failure means "damaged", never a crash
        raise _damaged(name, e) from None

    meta = {"format": fmt, "mode": mode, "n_frames": n}
    if n == 1:
        return LoadedImage(path=path, frames=[first], source_format=fmt, bit_depth=bits, metadata=meta)

    def decode(i: int) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _open(data) as page:
                    return _frame(page, name, i, data)
        except ImageLoadError:
            raise
        except Exception as e:  # any decoder failure on one page is "damaged", never a crash
            raise ImageLoadError(f"{name}: page {i + 1} of {n} is damaged and cannot be shown.",
                                 detail=type(e).__name__) from None

    frames = FrameSequence(n, decode, name, first=first)
    return LoadedImage(path=path, frames=frames, source_format=fmt, bit_depth=bits, metadata=meta)

