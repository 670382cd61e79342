"""Manual calipers and the report pair, Qt-free: the geometry, their lengths and their store.

The report pair is what a sonographer writes in a report: the widest extent of the lesion parallel
to the skin (horizontal, probe at the top of the image) and its depth perpendicular to it
(vertical), beside the longest diameter (Feret, D1) and its perpendicular (D2) that the
measurements already give. A caliper is measured in mm where the pixel size for that part of the
image is known (the file's own calibrated region, else the user's calibration), else in pixels.

The reader's calipers are kept per image sha256 and frame (``CaliperStore``), like the outline
edits, so reopening the image brings them back; the PDF report draws and lists them.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from busapp.core.image_store import FrameStore, is_sha256

CALIPERS_FOLDER = "calipers"

Point = tuple[float, float]
Line = tuple[Point, Point]


@dataclass(frozen=True)
class Length:
    value: float
    unit: str  # "mm" or "px"
    source: str | None = None  # where the pixel size came from

    def text(self) -> str:
        return f"{self.value:.1f} {self.unit}"


@dataclass(frozen=True)
class ReportPair:
    width_line: Line  # horizontal, at the lesion's widest row, from its left to its right edge
    depth_line: Line  # vertical, at its deepest column, from its top to its bottom edge
    width_px: float
    depth_px: float


def report_pair(mask: np.ndarray) -> ReportPair | None:
    """Widest extent parallel to the skin (horizontal) and depth perpendicular to it (vertical) of
    the largest outlined region, in pixels, with lines to draw (pixel edges, as the measurements)."""
    from busapp.core.measure import largest_component

    m = largest_component(np.asarray(mask, bool))
    if not m.any():
        return None
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    # Draw each line where the lesion is widest / deepest so it lies on the lesion.
    row = int(rows[np.argmax(m[rows].sum(axis=1))]) + 0.5
    col = int(cols[np.argmax(m[:, cols].sum(axis=0))]) + 0.5
    return ReportPair(((float(x0), row), (float(x1), row)), ((col, float(y0)), (col, float(y1))),
                      float(x1 - x0), float(y1 - y0))


def line_spacing(loaded: Any, line: Line, shape: tuple[int, int], sha256: str | None = None,
                 calibrations: Any = None) -> tuple[tuple[float, float] | None, str | None]:
    """The pixel size (row_mm, col_mm) that applies along ``line``, or (None, None): pixels."""
    from busapp.core.measure import resolve_spacing_for_box

    h, w = shape
    xs = [min(w - 1, max(0, int(x))) for x, _ in line]  # the end points' pixels, clamped to the image
    ys = [min(h - 1, max(0, int(y))) for _, y in line]
    return resolve_spacing_for_box(loaded, (min(xs), min(ys), max(xs), max(ys)), sha256, calibrations)


def caliper_length(line: Line, spacing: tuple[float, float] | None, source: str | None = None) -> Length:
    (x0, y0), (x1, y1) = line
    if spacing is None:
        return Length(math.hypot(x1 - x0, y1 - y0), "px")
    row_mm, col_mm = spacing
    return Length(math.hypot((x1 - x0) * col_mm, (y1 - y0) * row_mm), "mm", source)


@dataclass(frozen=True)
class CaliperItem:
    """One measured line for the panel and the report: the outline's report pair ("width",
    "depth") or a line the reader drew ("C1", "C2", ...)."""

    key: str
    label: str  # "Width \u2225 skin", "Caliper C1"
    short: str  # "W", "H", "C1": drawn beside the line
    line: Line
    length: Length

    @property
    def by_reader(self) -> bool:
        return self.key.startswith("C")


def reader_lines(items: Any) -> list[tuple[str, Line]]:
    """The reader's own calipers among ``items`` as (label drawn beside it, line)."""
    return [(f"{it.short} {it.length.text()}", it.line) for it in items if it.by_reader]


class CaliperStore(FrameStore):
    """The reader's caliper lines (image pixel coordinates), per image sha256 and frame."""

    folder_name = CALIPERS_FOLDER
    what = "a caliper"

    def get(self, sha256: str | None, frame: int = 0) -> list[Line]:
        """The stored lines of this frame; [] if none (or the entry is damaged)."""
        if not is_sha256(sha256):
            return []
        entry = self._entry(sha256, frame)
        try:
            return [((float(a), float(b)), (float(c), float(d))) for (a, b), (c, d) in entry["lines"]]
        except (TypeError, KeyError, ValueError):
            return []

    def put(self, sha256: str, frame: int, lines: list[Line]) -> None:
        """Keep ``lines`` for this frame (none: the entry goes)."""
        if not lines:
            self.remove(sha256, frame)
            return
        self._put_entry(sha256, frame, {
            "lines": [[[round(x, 2), round(y, 2)] for x, y in line] for line in lines],
            "drawn_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        })
