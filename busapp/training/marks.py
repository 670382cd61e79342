"""Synthetic burned-in marks for training: caliper crosses, dotted measurement lines, text blocks,
region-of-interest boxes.

BUSI and BUS-UCLM images carry calipers and text burned in by the scanner (their READMEs count
them), far more often on lesions than on normal tissue and differently at each site. A network can
learn the marks instead of the tissue. Painting the same kinds of marks onto random training images
of every class takes away that shortcut; nothing changes at inference.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BANK_SIZE = 48  # overlays drawn once per input size; each training image picks one at random


def _cross(u: np.ndarray, r: int, c: int, arm: int, value: float, diagonal: bool) -> None:
    n = u.shape[0]
    for k in range(-arm, arm + 1):
        pts = ((r + k, c + k), (r - k, c + k)) if diagonal else ((r + k, c), (r, c + k))
        for y, x in pts:
            if 0 <= y < n and 0 <= x < n:
                u[y, x] = value


def _dotted_line(u: np.ndarray, a: tuple[int, int], b: tuple[int, int], step: int, value: float) -> None:
    length = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
    for t in range(0, length + 1, step):
        y = round(a[0] + (b[0] - a[0]) * t / length)
        x = round(a[1] + (b[1] - a[1]) * t / length)
        u[y, x] = value


def _text_block(u: np.ndarray, rng: np.random.Generator, value: float) -> None:
    n = u.shape[0]
    ch_h, ch_w = max(3, n // 60), max(2, n // 90)
    rows, chars = int(rng.integers(1, 4)), int(rng.integers(3, 10))
    top = int(rng.integers(2, max(3, n // 5)))
    left = int(rng.integers(2, n - chars * (ch_w + 1) - 2))
    if rng.random() < 0.5:  # bottom corner as often as top
        top = n - top - rows * (ch_h + 2)
    for row in range(rows):
        for ch in range(chars):
            if rng.random() < 0.15:
                continue  # a space
            glyph = rng.random((ch_h, ch_w)) < 0.6
            y, x = top + row * (ch_h + 2), left + ch * (ch_w + 1)
            u[y : y + ch_h, x : x + ch_w][glyph] = value


@lru_cache(maxsize=4)
def mark_bank(size: int, seed: int = 20261202) -> np.ndarray:
    """(BANK_SIZE, size, size, 1) float32 overlays: a mark's brightness in (0, 1], 0 where none."""
    rng = np.random.default_rng(seed)
    bank = np.zeros((BANK_SIZE, size, size, 1), np.float32)
    for i in range(BANK_SIZE):
        u = bank[i, :, :, 0]
        value = float(rng.uniform(0.75, 1.0))
        arm = max(2, round(size * rng.uniform(0.01, 0.025)))
        lo, hi = size // 8, size - size // 8
        crosses = [(int(rng.integers(lo, hi)), int(rng.integers(lo, hi))) for _ in range(int(rng.integers(1, 5)))]
        diagonal = rng.random() < 0.4
        for r, c in crosses:
            _cross(u, r, c, arm, value, diagonal)
        if len(crosses) >= 2 and rng.random() < 0.5:
            _dotted_line(u, crosses[0], crosses[1], int(rng.integers(3, 6)), value)
        if rng.random() < 0.4:
            _text_block(u, rng, value)
        if rng.random() < 0.25:  # a thin region-of-interest box, as some scanners draw
            (y0, y1), (x0, x1) = (sorted(rng.integers(4, size - 4, 2)) for _ in range(2))
            u[y0, x0:x1] = u[y1, x0:x1] = u[y0:y1, x0] = u[y0:y1, x1] = value * 0.8
    return bank


def paint_marks(xb, inside, rate: float, pad_value: float, rng):
    """Marks from the bank on about ``rate`` of the images of a batch (``keras.ops``), inside the
    scan only (letterbox padding stays black), at least as bright as the tissue under them."""
    from keras import ops

    n, size = ops.shape(xb)[0], int(xb.shape[1])
    bank = ops.convert_to_tensor(mark_bank(size))
    pick = ops.cast(ops.floor(rng.uniform((n,), 0.0, float(BANK_SIZE) - 1e-3)), "int32")
    u = ops.take(bank, pick, axis=0)
    on = ops.cast(rng.uniform((n, 1, 1, 1), 0.0, 1.0) < rate, "float32")
    where = ops.cast(u > 0, "float32") * on * inside
    marked = ops.maximum(xb, pad_value + u * (1.0 - pad_value))
    return xb * (1.0 - where) + marked * where
