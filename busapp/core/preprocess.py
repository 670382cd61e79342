"""The one preprocessing path between an image and the model, used by training and inference alike.

grey uint8 image -> letterboxed square (aspect ratio kept, zero padding) -> (x - 127) / 128.
Keeping the aspect ratio matters: lesion shape (e.g. taller than wide) is a diagnostic sign, and
stretching would distort it. The letterbox geometry is returned so the predicted mask can be
mapped back onto the original pixels exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

INPUT_SIZE = 224
INTENSITY_OFFSET = 127.0
INTENSITY_SCALE = 128.0

PREPROCESSING_DESCRIPTION = (
    "8-bit grey (ITU-R 601-2 luma for colour); letterbox to a square keeping the aspect ratio, "
    "bilinear (antialiased) resize, zero padding centred; float32 (x - 127) / 128; one channel"
)


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits inside the square model input."""

    src_width: int
    src_height: int
    size: int
    scaled_width: int
    scaled_height: int
    pad_x: int
    pad_y: int


def to_grey_u8(image: np.ndarray) -> np.ndarray:
    """Any 2-D grey or HxWx{3,4} colour array, 8-bit or wider, to a 2-D uint8 grey image."""
    a = np.asarray(image)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[:, :, 0]
        elif a.shape[2] in (3, 4):
            rgb = a[:, :, :3].astype(np.float64)
            a = rgb @ np.array([0.299, 0.587, 0.114])  # ITU-R 601-2 luma, as PIL's "L"
            if image.dtype == np.uint8:
                return np.clip(np.floor(a + 0.5), 0, 255).astype(np.uint8)
        else:
            raise ValueError(f"unsupported channel count {a.shape[2]}")
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    # Wider or float data: stretch its own range to 0..255 (ultrasound has no absolute units).
    f = a.astype(np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(f[finite].min()), float(f[finite].max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    f = np.where(finite, f, lo)
    return np.clip((f - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def letterbox_geometry(width: int, height: int, size: int = INPUT_SIZE) -> Letterbox:
    if width < 1 or height < 1:
        raise ValueError("image has no pixels")
    scale = size / max(width, height)
    sw = max(1, min(size, round(width * scale)))
    sh = max(1, min(size, round(height * scale)))
    return Letterbox(width, height, size, sw, sh, (size - sw) // 2, (size - sh) // 2)


def letterbox(grey: np.ndarray, size: int = INPUT_SIZE, resample: int = Image.BILINEAR) -> tuple[np.ndarray, Letterbox]:
    """Resize a 2-D uint8 array into a zero-padded square, keeping the aspect ratio."""
    h, w = grey.shape
    lb = letterbox_geometry(w, h, size)
    small = np.asarray(Image.fromarray(grey).resize((lb.scaled_width, lb.scaled_height), resample))
    out = np.zeros((size, size), np.uint8)
    out[lb.pad_y : lb.pad_y + lb.scaled_height, lb.pad_x : lb.pad_x + lb.scaled_width] = small
    return out, lb


def scale_intensity(u8: np.ndarray) -> np.ndarray:
    return (u8.astype(np.float32) - INTENSITY_OFFSET) / INTENSITY_SCALE


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Image (any layout ``to_grey_u8`` takes) -> model input (size, size, 1) float32 + geometry."""
    square, lb = letterbox(to_grey_u8(image), size)
    return scale_intensity(square)[:, :, None], lb


def mask_to_input(mask: np.ndarray, lb: Letterbox) -> np.ndarray:
    """A full-size binary mask -> the letterboxed {0,1} float32 target the model learns."""
    square, _ = letterbox((np.asarray(mask) > 0).astype(np.uint8) * 255, lb.size)
    return (square >= 128).astype(np.float32)


def mask_from_output(prob: np.ndarray, lb: Letterbox, threshold: float = 0.5) -> np.ndarray:
    """The model's (size, size) probability map -> a bool mask the size of the original image."""
    p = np.asarray(prob, np.float32).reshape(lb.size, lb.size)
    crop = p[lb.pad_y : lb.pad_y + lb.scaled_height, lb.pad_x : lb.pad_x + lb.scaled_width]
    full = Image.fromarray(np.ascontiguousarray(crop)).resize((lb.src_width, lb.src_height), Image.BILINEAR)
    return np.asarray(full) >= threshold
