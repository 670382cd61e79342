"""Lesion measurements from a predicted (or drawn) mask: area, calipers, depth-to-width ratio.

Qt-free and numpy-only. What is computed, exactly:

* **Which lesion.** The largest 8-connected component of the mask (most pixels; ties go to the one
  met first in raster order), with its interior holes filled (background 4-connected to nothing
  outside the component). Smaller blobs are ignored, so the numbers describe one lesion.
* **Geometry of a pixel.** Each pixel is a square: pixel (row r, column c) covers x in [c, c+1],
  y in [r, r+1]. Physical coordinates are x * col_mm, y * row_mm, so anisotropic spacing is exact.
* **Area.** Pixel count of the filled component times row_mm * col_mm (or px²).
* **Longest diameter.** The maximum Feret diameter of the component (union of its pixel squares),
  i.e. the longest distance between two vertices of its convex hull, measured in physical space.
* **Perpendicular diameter.** The longest chord of that convex hull perpendicular to the longest
  diameter (a segment at right angles to it, from outline to outline, as a sonographer places the
  second caliper pair). For an ellipse it is the minor axis. Where several chords tie (flat sides),
  the one in the middle of the run is reported.
* **Depth-to-width ratio.** Vertical extent (depth, rows) over horizontal extent (width, columns)
  of the component's bounding box, both in physical units when spacing is known. > 1 means
  "taller than wide", a BI-RADS sign of malignancy (probe assumed at the top of the image).

Axis endpoints are returned in image pixel coordinates (x, y), ready to draw as calipers.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LesionMeasurements:
    area: float
    area_unit: str  # "mm²" or "px²"
    longest_diameter: float
    perpendicular_diameter: float
    unit: str  # "mm" or "px"
    depth_to_width: float  # vertical (depth) extent / horizontal (width) extent
    longest_axis: tuple[tuple[float, float], tuple[float, float]]  # (x, y) endpoints, image pixels
    perpendicular_axis: tuple[tuple[float, float], tuple[float, float]]
    spacing_source: str | None  # "DICOM Pixel Spacing", "user calibrated", ...; None in pixels

    @property
    def taller_than_wide(self) -> bool:
        return self.depth_to_width > 1.0

    @property
    def calibrated(self) -> bool:
        return self.unit == "mm"

    def to_json(self) -> dict:
        return {
            "area": round(self.area, 4),
            "area_unit": self.area_unit,
            "longest_diameter": round(self.longest_diameter, 4),
            "perpendicular_diameter": round(self.perpendicular_diameter, 4),
            "unit": self.unit,
            "depth_to_width": round(self.depth_to_width, 4),
            "taller_than_wide": self.taller_than_wide,
            "spacing_source": self.spacing_source,
        }


# --- connected components on row runs (no scipy) -------------------------------------------------


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: (row, start, end) with end exclusive, in raster order."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # row-major order pairs each start with its end
    return rows, starts, ends


def _components(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, eight: bool) -> np.ndarray:
    """Component id (root run index) for every run, by union-find over overlapping runs of adjacent rows."""
    n = len(rows)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    slack = 1 if eight else 0  # 8-connectivity also joins diagonal neighbours
    row_first = np.searchsorted(rows, np.arange(int(rows.max()) + 2) if n else [0])
    rl, sl, el = rows.tolist(), starts.tolist(), ends.tolist()
    for i in range(n):
        r = rl[i]
        if r == 0:
            continue
        j, j_end = int(row_first[r - 1]), int(row_first[r])
        for k in range(j, j_end):
            if sl[k] < el[i] + slack and sl[i] < el[k] + slack:
                a, b = find(i), find(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end-exclusive, of the True pixels; None if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _component_crop(mask: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The largest 8-connected component, holes filled, cropped tight: (crop, y0, x0); None if empty.

    Work happens inside the bounding box of the mask: a lesion is small next to the image.
    """
    box = _bbox(mask)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    rows, starts, ends = _runs(mask[y0:y1, x0:x1])
    comp = _components(rows, starts, ends, eight=True)
    sizes = np.bincount(comp, weights=ends - starts)
    best = int(np.argmax(sizes))  # argmax takes the first max: the lowest root = earliest in raster order
    keep = comp == best
    rows, starts, ends = rows[keep], starts[keep], ends[keep]
    cy0, cy1, cx0, cx1 = int(rows[0]), int(rows[-1]) + 1, int(starts.min()), int(ends.max())
    # One pixel of background all around, so the outside is one connected background component.
    crop = np.zeros((cy1 - cy0 + 2, cx1 - cx0 + 2), bool)
    for r, s, e in zip((rows - cy0 + 1).tolist(), (starts - cx0 + 1).tolist(), (ends - cx0 + 1).tolist(), strict=True):
        crop[r, s:e] = True
    brows, bstarts, bends = _runs(~crop)
    bg = _components(brows, bstarts, bends, eight=False)
    outside = bg == bg[0]  # run 0 is the top padding row, which touches all outside background
    filled = np.ones_like(crop)
    for r, s, e in zip(brows[outside].tolist(), bstarts[outside].tolist(), bends[outside].tolist(), strict=True):
        filled[r, s:e] = False
    return filled[1:-1, 1:-1], y0 + cy0, x0 + cx0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (ties: first in raster order), holes filled."""
    mask = np.asarray(mask, bool)
    out = np.zeros_like(mask)
    found = _component_crop(mask)
    if found is not None:
        crop, y0, x0 = found
        out[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return out


# --- geometry --------------------------------------------------------------------------------------


def extent_corners(rows: np.ndarray, first: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(x, y) corners of row extents ``first`` .. ``end`` (end-exclusive) on ``rows``: the hull of a
    union of pixel squares is the hull of these, far fewer points than every pixel's corners."""
    return np.concatenate([np.stack([first, rows], 1), np.stack([first, rows + 1], 1),
                           np.stack([end, rows], 1), np.stack([end, rows + 1], 1)])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of integer points, vertices counter-clockwise (no repeats).

    Akl-Toussaint: points strictly inside the polygon of the 8 extreme points (in x, y, x+y, x-y)
    cannot be hull vertices and are dropped with numpy first; the monotone chain sees the rest.
    """
    points = np.asarray(points, np.int64).reshape(-1, 2)
    if len(points):  # unique rows in (x, y) order, by one integer key (np.unique(axis=0) is slow)
        lo = points.min(axis=0)
        span = int(points[:, 1].max() - lo[1]) + 1
        key = np.unique((points[:, 0] - lo[0]) * span + (points[:, 1] - lo[1]))
        points = np.stack([key // span + lo[0], key % span + lo[1]], 1)
    if len(points) > 32:
        x, y = points[:, 0], points[:, 1]
        ext = {int(f(v)) for v in (x, y, x + y, x - y) for f in (np.argmin, np.argmax)}
        poly = _monotone_chain(points[sorted(ext)])
        if len(poly) >= 3:
            inside = np.ones(len(points), bool)
            for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
                inside &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) > 0
            points = points[~inside]
    return _monotone_chain(points)


def _monotone_chain(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; hull vertices counter-clockwise out (no repeats)."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) <= 2:
        return np.array(pts, float)

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1], float)


def _chords_at_vertices(hs: np.ndarray, ht: np.ndarray) -> np.ndarray:
    """Chord length of the convex polygon (hs, ht) along {s = hs[k]} for every vertex k, vectorised."""
    s0, s1 = hs[None, :], np.roll(hs, -1)[None, :]
    t0, t1 = ht[None, :], np.roll(ht, -1)[None, :]
    s = hs[:, None]
    eps = 1e-9 * max(1.0, float(np.abs(hs).max()))
    ds = s1 - s0
    crosses = (np.minimum(s0, s1) <= s + eps) & (s - eps <= np.maximum(s0, s1)) & (np.abs(ds) > eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t0 + (s - s0) * (t1 - t0) / np.where(crosses, ds, 1.0)
    hit = crosses | (np.abs(s0 - s) <= eps)  # a vertex on the line counts even on an edge along it
    t = np.where(crosses, t, t0)
    return np.where(hit, t, -np.inf).max(1) - np.where(hit, t, np.inf).min(1)


def _chord_at(s: float, hs: np.ndarray, ht: np.ndarray) -> tuple[float, float]:
    """(t_min, t_max) where the line {s = const} crosses the convex polygon with vertices (hs, ht)."""
    s0, s1 = hs, np.roll(hs, -1)
    t0, t1 = ht, np.roll(ht, -1)
    lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
    eps = 1e-9 * max(1.0, float(np.abs(hs).max()))
    cross = (lo <= s + eps) & (s - eps <= hi) & (hi - lo > eps)
    ts = t0[cross] + (s - s0[cross]) * (t1[cross] - t0[cross]) / (s1[cross] - s0[cross])
    at_vertex = ht[np.abs(hs - s) <= eps]
    ts = np.concatenate([ts, at_vertex])
    return float(ts.min()), float(ts.max())


def _scale(spacing_mm: tuple[float, float] | None, spacing_source: str | None) -> tuple[float, float, str, str, str | None]:
    """(row_mm, col_mm, unit, area unit, source) for ``_measure_component``; None: pixels."""
    if spacing_mm is None:
        return 1.0, 1.0, "px", "px²", None
    row_mm, col_mm = (float(v) for v in spacing_mm)
    if not (math.isfinite(row_mm) and math.isfinite(col_mm) and row_mm > 0 and col_mm > 0):
        raise ValueError(f"pixel spacing must be positive, got {spacing_mm}")
    return row_mm, col_mm, "mm", "mm²", spacing_source


def measure_mask(
    mask: np.ndarray,
    spacing_mm: tuple[float, float] | None,
    spacing_source: str | None = None,
) -> LesionMeasurements | None:
    """Measure the largest lesion in ``mask`` (see module docstring); None for an empty mask.

    ``spacing_mm`` is (row_mm, col_mm) per pixel, or None to measure in pixels (then
    ``spacing_source`` is ignored and reported as None).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    scale = _scale(spacing_mm, spacing_source)  # validated before the mask is searched
    found = _component_crop(mask.astype(bool, copy=False))
    if found is None:
        return None
    return _measure_component(*found, *scale)


def _measure_component(
    comp: np.ndarray, y0: int, x0: int, row_mm: float, col_mm: float, unit: str, area_unit: str, source: str | None
) -> LesionMeasurements:
    area = float(np.count_nonzero(comp)) * row_mm * col_mm
    rows, starts, ends = _runs(comp)
    rows, starts, ends = rows + y0, starts + x0, ends + x0
    hull_px = _convex_hull(extent_corners(rows, starts, ends))
    scale = np.array([col_mm, row_mm])
    hull = hull_px * scale  # a linear map keeps the hull a hull: measure in physical space

    # Longest diameter: brute force over hull vertex pairs (a pixel hull has few vertices).
    d2 = ((hull[:, None, :] - hull[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    p, q = hull[i], hull[j]
    if (p[1], p[0]) > (q[1], q[0]):  # stable orientation: first endpoint is the upper (then left) one
        p, q = q, p
    longest = float(math.sqrt(d2[i, j]))
    a = (q - p) / longest
    n = np.array([-a[1], a[0]])
    hs, ht = hull @ a, hull @ n

    # Chord length along the axis is concave for a convex polygon: its max is at a vertex position.
    chords = _chords_at_vertices(hs, ht)
    best = float(chords.max())
    tie = hs[chords >= best - 1e-9 * max(1.0, best)]
    s_mid = 0.5 * (float(tie.min()) + float(tie.max()))  # middle of a flat run (rectangles)
    t_lo, t_hi = _chord_at(s_mid, hs, ht)
    perp = t_hi - t_lo
    e1 = (s_mid * a + t_lo * n) / scale
    e2 = (s_mid * a + t_hi * n) / scale

    depth = comp.shape[0] * row_mm  # the crop is the component's tight bounding box
    width = comp.shape[1] * col_mm

    def pt(v: np.ndarray) -> tuple[float, float]:
        return (float(v[0]), float(v[1]))

    return LesionMeasurements(
        area=area,
        area_unit=area_unit,
        longest_diameter=longest,
        perpendicular_diameter=float(perp),
        unit=unit,
        depth_to_width=float(depth / width),
        longest_axis=(pt(p / scale), pt(q / scale)),
        perpendicular_axis=(pt(e1), pt(e2)),
        spacing_source=source,
    )


def format_measurements(m: LesionMeasurements | None) -> list[tuple[str, str]]:
    """(label, value with unit) rows for display and reports; the unit is always shown."""
    if m is None:
        return [("Lesion", "no lesion outlined")]
    from busapp.core.wording import measurement_rows

    src = f" ({m.spacing_source})" if m.spacing_source else " (pixel size unknown)"
    return [(label, value + (src if key == "area" else "")) for key, label, value in measurement_rows(m)]


# --- user calibration (images without a trusted pixel size) ---------------------------------------

USER_CALIBRATED = "user calibrated"
CALIBRATION_FILE_NAME = "calibrations.json"


def spacing_from_line(p0: tuple[float, float], p1: tuple[float, float], length_mm: float) -> tuple[float, float]:
    """A line drawn over the scanner's depth scale, (x, y) pixel endpoints, and its length in mm ->
    (row_mm, col_mm). Pixels are assumed square (true of B-mode scan conversion), so the one
    measured direction calibrates both."""
    px = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    if not (math.isfinite(length_mm) and length_mm > 0):
        raise ValueError("the length must be a positive number of millimetres")
    if px < 5:
        raise ValueError("the line is too short to calibrate: draw it over a longer part of the scale")
    mm = length_mm / px
    return (mm, mm)


class CalibrationStore:
    """User calibrations remembered per image, keyed by the sha256 of the file (never its name).

    A small JSON file in the user's data folder, rewritten atomically on each change.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from busapp.core.paths import user_data_dir

            path = user_data_dir() / CALIBRATION_FILE_NAME
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}  # missing or damaged: no calibrations rather than a crash

    def get(self, sha256: str) -> tuple[float, float] | None:
        entry = self._load().get(sha256)
        try:
            row, col = (float(v) for v in entry["spacing_mm"])
        except (TypeError, KeyError, ValueError):
            return None
        return (row, col) if row > 0 and col > 0 else None

    def entry(self, sha256: str) -> dict[str, Any] | None:
        return self._load().get(sha256)

    def set(
        self,
        sha256: str,
        spacing_mm: tuple[float, float],
        line: tuple[tuple[float, float], tuple[float, float]] | None = None,
        length_mm: float | None = None,
    ) -> None:
        from busapp.core.atomic import write_text_atomic

        data = self._load()
        data[sha256] = {
            "spacing_mm": [float(spacing_mm[0]), float(spacing_mm[1])],
            "line": [list(map(float, p)) for p in line] if line else None,
            "length_mm": length_mm,
            "source": USER_CALIBRATED,
            "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_text_atomic(self.path, json.dumps(data, indent=1))

    def remove(self, sha256: str) -> None:
        from busapp.core.atomic import write_text_atomic

        data = self._load()
        if data.pop(sha256, None) is not None:
            write_text_atomic(self.path, json.dumps(data, indent=1))


def resolve_spacing(
    loaded: Any, lesion: np.ndarray, sha256: str | None = None, calibrations: CalibrationStore | None = None
) -> tuple[tuple[float, float] | None, str | None]:
    """The pixel size to measure ``lesion`` with: the image's own trusted spacing (DICOM) first,
    else the user's calibration of this file, else (None, None) = pixels."""
    from busapp.core.spacing import bbox_of_mask

    return resolve_spacing_for_box(loaded, bbox_of_mask(lesion), sha256, calibrations)


def resolve_spacing_for_box(
    loaded: Any, bbox: tuple[int, int, int, int] | None, sha256: str | None = None,
    calibrations: CalibrationStore | None = None,
) -> tuple[tuple[float, float] | None, str | None]:
    """``resolve_spacing`` for an inclusive (x0, y0, x1, y1) pixel box; None: nothing to measure."""
    from busapp.core.spacing import spacing_for_region

    found = spacing_for_region(loaded, bbox) if bbox is not None else None
    if found is not None:
        return found
    if sha256 and calibrations is not None:
        spacing = calibrations.get(sha256)
        if spacing is not None:
            return spacing, USER_CALIBRATED
    return None, None


def measure_lesion(
    loaded: Any, mask: np.ndarray, sha256: str | None = None, calibrations: CalibrationStore | None = None,
    one_region: bool = False,
) -> tuple[LesionMeasurements | None, tuple[float, float] | None]:
    """``measure_image`` plus the (row, col) mm pixel size it used (None: measured in pixels).

    ``one_region``: the mask is already one 8-connected region with its holes filled (the card's
    ``mask_keep: largest``), so the components are not searched again: the same figures, ~1 ms less.
    """
    mask = np.asarray(mask, bool)
    if one_region:
        box = _bbox(mask)
        found = None if box is None else (mask[box[0] : box[1], box[2] : box[3]], box[0], box[2])
    else:
        found = _component_crop(mask)
    if found is None:
        return None, None
    crop, y0, x0 = found  # cropped tight, so its box is the lesion's
    box = (x0, y0, x0 + crop.shape[1] - 1, y0 + crop.shape[0] - 1)
    spacing, source = resolve_spacing_for_box(loaded, box, sha256, calibrations)
    return _measure_component(crop, y0, x0, *_scale(spacing, source)), spacing


def measure_image(
    loaded: Any, mask: np.ndarray, sha256: str | None = None, calibrations: CalibrationStore | None = None
) -> LesionMeasurements | None:
    """Measure a predicted mask of a loaded image with the best pixel size available."""
    return measure_lesion(loaded, mask, sha256, calibrations)[0]
