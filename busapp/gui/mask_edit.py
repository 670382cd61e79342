"""The reader's edits of the lesion outline: a Qt-free mask model with undo/redo, and its store.

``MaskEditor`` holds the mask being edited (bool, image size) beside the model's own mask. Brush
and eraser paint discs joined into capsules along the pointer's path (so a fast stroke has no
gaps); the polygon/lasso tool fills or clears a closed polygon. Each stroke or polygon is one undo
step, stored as the changed bounding box before and after (not a whole mask per step).

``OutlineEditStore`` keeps edited masks per image, keyed by the sha256 of the file (never its name)
and the frame, as run-length JSON in the user's data folder, written atomically; reopening the
same file restores the reader's outline.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from busapp.core.image_store import FrameStore

MAX_UNDO = 100
EDITS_FOLDER = "reader_outlines"


@dataclass(frozen=True)
class _Step:
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 (end-exclusive)
    before: np.ndarray
    after: np.ndarray


class MaskEditor:
    """Edits of one frame's mask. Coordinates are image pixels (x, y); pixel (r, c) has its centre
    at (c + 0.5, r + 0.5), the viewer's scene coordinates."""

    def __init__(self, model_mask: np.ndarray, start: np.ndarray | None = None, max_undo: int = MAX_UNDO) -> None:
        model_mask = np.asarray(model_mask, bool)
        if model_mask.ndim != 2:
            raise ValueError(f"mask must be 2-D, got shape {model_mask.shape}")
        self._model = model_mask.copy()
        self._model.setflags(write=False)
        self._mask = (np.asarray(start, bool) if start is not None else model_mask).copy()
        if self._mask.shape != self._model.shape:
            raise ValueError(f"edited mask {self._mask.shape} does not match the image {self._model.shape}")
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._max_undo = max_undo
        self._stroke_before: np.ndarray | None = None
        self._stroke_box: list[int] | None = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current mask (read-only view; copy it to keep it)."""
        v = self._mask.view()
        v.setflags(write=False)
        return v

    @property
    def model_mask(self) -> np.ndarray:
        return self._model

    @property
    def shape(self) -> tuple[int, int]:
        return self._mask.shape  # type: ignore[return-value]

    @property
    def edited(self) -> bool:
        """True when the mask differs from the model's."""
        return not np.array_equal(self._mask, self._model)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def in_stroke(self) -> bool:
        return self._stroke_before is not None

    # -- strokes ---------------------------------------------------------------------------------
    def begin_stroke(self) -> None:
        """Start one undo step (a brush drag); ends with ``end_stroke``."""
        if self._stroke_before is None:
            self._stroke_before = self._mask.copy()
            self._stroke_box = None

    def end_stroke(self) -> bool:
        """Close the step; True if the stroke changed any pixel."""
        before, box = self._stroke_before, self._stroke_box
        self._stroke_before = self._stroke_box = None
        if before is None or box is None:
            return False
        y0, y1, x0, x1 = box
        b, a = before[y0:y1, x0:x1], self._mask[y0:y1, x0:x1]
        if np.array_equal(a, b):
            return False
        self._push(_Step((y0, y1, x0, x1), b.copy(), a.copy()))
        return True

    def paint(self, x0: float, y0: float, x1: float, y1: float, radius: float, value: bool = True) -> None:
        """Paint (or, with value False, erase) a capsule of ``radius`` from (x0, y0) to (x1, y1)."""
        h, w = self._mask.shape
        r = max(0.5, float(radius))
        bx0, bx1 = int(np.floor(min(x0, x1) - r)), int(np.ceil(max(x0, x1) + r)) + 1
        by0, by1 = int(np.floor(min(y0, y1) - r)), int(np.ceil(max(y0, y1) + r)) + 1
        bx0, by0, bx1, by1 = max(0, bx0), max(0, by0), min(w, bx1), min(h, by1)
        if bx0 >= bx1 or by0 >= by1:
            return
        yy, xx = np.mgrid[by0:by1, bx0:bx1]
        px, py = xx + 0.5, yy + 0.5
        dx, dy = x1 - x0, y1 - y0
        ll = dx * dx + dy * dy
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / ll, 0.0, 1.0) if ll > 0 else 0.0
        d2 = (px - (x0 + t * dx)) ** 2 + (py - (y0 + t * dy)) ** 2
        self._apply(by0, by1, bx0, bx1, d2 <= r * r, bool(value))

    def fill_polygon(self, points: list[tuple[float, float]], value: bool = True) -> bool:
        """Fill (value False: clear) the closed polygon through ``points``; one undo step; True if
        any pixel changed. Pixels whose centre is inside the polygon (even-odd rule) change."""
        if len(points) < 3:
            return False
        pts = np.asarray(points, float)
        h, w = self._mask.shape
        bx0, by0 = max(0, int(np.floor(pts[:, 0].min()))), max(0, int(np.floor(pts[:, 1].min())))
        bx1, by1 = min(w, int(np.ceil(pts[:, 0].max())) + 1), min(h, int(np.ceil(pts[:, 1].max())) + 1)
        if bx0 >= bx1 or by0 >= by1:
            return False
        inside = _points_in_polygon(bx0, by0, bx1, by1, pts)
        self.begin_stroke()
        self._apply(by0, by1, bx0, bx1, inside, bool(value))
        return self.end_stroke()

    def set_mask(self, mask: np.ndarray) -> bool:
        """Replace the whole mask (reset to the model's, clear all) as one undo step."""
        mask = np.asarray(mask, bool)
        if mask.shape != self._mask.shape:
            raise ValueError(f"mask {mask.shape} does not match the image {self._mask.shape}")
        h, w = mask.shape
        self.begin_stroke()
        self._apply(0, h, 0, w, np.ones_like(mask), True, values=mask)
        return self.end_stroke()

    def reset_to_model(self) -> bool:
        return self.set_mask(self._model)

    def clear(self) -> bool:
        return self.set_mask(np.zeros_like(self._mask))

    # -- undo ------------------------------------------------------------------------------------
    def undo(self) -> bool:
        if self.in_stroke or not self._undo:
            return False
        s = self._undo.pop()
        y0, y1, x0, x1 = s.box
        self._mask[y0:y1, x0:x1] = s.before
        self._redo.append(s)
        return True

    def redo(self) -> bool:
        if self.in_stroke or not self._redo:
            return False
        s = self._redo.pop()
        y0, y1, x0, x1 = s.box
        self._mask[y0:y1, x0:x1] = s.after
        self._undo.append(s)
        return True

    # -- internals -------------------------------------------------------------------------------
    def _apply(self, y0: int, y1: int, x0: int, x1: int, where: np.ndarray, value: bool,
               values: np.ndarray | None = None) -> None:
        implicit = self._stroke_before is None
        if implicit:
            self.begin_stroke()
        region = self._mask[y0:y1, x0:x1]
        if values is None:
            region[where] = value
        else:
            region[where] = values[where]
        b = self._stroke_box
        self._stroke_box = [y0, y1, x0, x1] if b is None else [min(b[0], y0), max(b[1], y1),
                                                               min(b[2], x0), max(b[3], x1)]
        if implicit:
            self.end_stroke()

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        self._redo.clear()
        if len(self._undo) > self._max_undo:
            del self._undo[0]


def _points_in_polygon(x0: int, y0: int, x1: int, y1: int, pts: np.ndarray) -> np.ndarray:
    """Even-odd test of the pixel centres of the box [x0, x1) x [y0, y1) against a polygon; scanline
    crossings per row, so the cost is rows x edges, not pixels x edges."""
    ys = np.arange(y0, y1) + 0.5
    xs = np.arange(x0, x1) + 0.5
    a, b = pts, np.roll(pts, -1, axis=0)
    out = np.zeros((len(ys), len(xs)), bool)
    ay, by_ = a[:, 1][None, :], b[:, 1][None, :]
    ax, bx = a[:, 0][None, :], b[:, 0][None, :]
    y = ys[:, None]
    crosses = (ay <= y) != (by_ <= y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = ax + (y - ay) * (bx - ax) / (by_ - ay)
    for i in range(len(ys)):
        xi = np.sort(xc[i][crosses[i]])
        for k in range(0, len(xi) - 1, 2):
            lo, hi = np.searchsorted(xs, xi[k]), np.searchsorted(xs, xi[k + 1])
            out[i, lo:hi] = True
    return out


# --- run-length encoding and the store -------------------------------------------------------------


def encode_rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, starting with a (possibly empty) run of False."""
    flat = np.asarray(mask, bool).ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def decode_rle(counts: list[int], shape: tuple[int, int]) -> np.ndarray:
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != shape[0] * shape[1]:
        raise ValueError("run lengths do not match the mask size")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(shape)


@dataclass(frozen=True)
class StoredEdit:
    mask: np.ndarray
    reader: str | None
    edited_at: str
    model: dict[str, Any] | None


class OutlineEditStore(FrameStore):
    """Reader-edited outlines, one JSON file per image sha256 (frames inside), atomically written."""

    folder_name = EDITS_FOLDER
    what = "an outline edit"

    def get(self, sha256: str, frame: int = 0) -> StoredEdit | None:
        """The stored edit of this frame; None if there is none or it is damaged."""
        entry = self._entry(sha256, frame)
        try:
            shape = (int(entry["shape"][0]), int(entry["shape"][1]))
            mask = decode_rle(entry["counts"], shape)
        except (TypeError, KeyError, ValueError, IndexError):
            return None
        return StoredEdit(mask, entry.get("reader"), str(entry.get("edited_at", "")), entry.get("model"))

    def put(self, sha256: str, frame: int, mask: np.ndarray, reader: str | None = None,
            model: dict[str, Any] | None = None) -> None:
        mask = np.asarray(mask, bool)
        self._put_entry(sha256, frame, {
            "shape": list(mask.shape),
            "counts": encode_rle(mask),
            "reader": reader or None,
            "edited_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "model": dict(model) if model else None,
        })
