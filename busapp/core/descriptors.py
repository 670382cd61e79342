"""BI-RADS ultrasound descriptors derived from the lesion outline and the image (Qt-free, numpy + PIL).

Each descriptor is a simple, stated rule on a few measured features, so the reader can see how it
was reached and overrule it:

* **shape** (oval / round / irregular): how well an ellipse with the outline's own second moments
  covers it (intersection over union) and how convex it is (area / convex-hull area); among the
  regular ones, round when the short axis is close to the long one.
* **orientation** (parallel / not parallel): the outline's depth against its width (bounding box),
  i.e. taller than wide or not, with the probe at the top of the image.
* **margin** (circumscribed / not circumscribed): a smooth, convex outline with a sharp edge:
  ellipse fit, convexity, the share of area lost to a morphological opening (lobules, spicules)
  and the intensity step across the outline relative to the texture around it.
* **echo pattern** and **posterior features**: from mean intensities inside, around and below the
  outline.

The thresholds were chosen on one half of BrEaST-Lesions-USG (radiologists' descriptors, their
own outlines) and the agreement measured on the other half; ``AGREEMENT`` holds those figures and
``SHOW_MIN_KAPPA`` decides which descriptors the app shows (scripts/validate_descriptors.py
reproduces them; docs/descriptors.md has the tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from busapp.core.measure import _convex_hull, extent_corners, largest_component

# --- thresholds (chosen on the development half; see the module docstring) -----------------------
SHAPE_ELLIPSE_IOU = 0.84  # at least this ellipse fit and ...
SHAPE_SOLIDITY = 0.93  # ... this convexity: regular (oval or round), else irregular
ROUND_AXIS_RATIO = 0.90  # regular and short/long axis at least this: round
# Margin: a logistic score fitted on the development half, on standardised features (mean, sd).
MARGIN_FEATURES = ("ellipse_iou", "solidity", "open_loss", "edge_step", "axis_ratio")
MARGIN_MEAN = (0.8486, 0.9133, 0.0129, 0.5805, 0.63)
MARGIN_SD = (0.0719, 0.0598, 0.0163, 0.3462, 0.1796)
MARGIN_WEIGHTS = (0.678, 0.158, -1.304, 0.224, -1.151)  # elongated, smooth, sharp-edged: circumscribed
MARGIN_BIAS = -0.14
MARGIN_SCORE = -0.25  # margin score above this: circumscribed
POSTERIOR_ENHANCEMENT = 1.35  # below / beside the lesion, mean intensity ratio
POSTERIOR_SHADOWING = 0.65
ANECHOIC_REL, ANECHOIC_CV = 0.50, 0.70  # darker than half the surroundings, and dark throughout
ISOECHOIC_REL, HYPERECHOIC_REL = 0.70, 0.85  # inside mean / surrounding mean

# Agreement with the radiologists on the held-out half (Cohen's kappa, accuracy, n); None where
# there is no reference. Filled from scripts/validate_descriptors.py.
AGREEMENT: dict[str, tuple[float, float, int] | None] = {
    "shape": (0.54, 0.76, 122),
    "orientation": None,  # the manifest has no orientation column
    "margin": (0.47, 0.73, 122),
    "echo_pattern": (0.19, 0.51, 116),
    "posterior_features": (0.34, 0.66, 118),
}
# Orientation is BI-RADS's own geometric definition (long axis parallel to the skin or not), read
# directly off the outline, so it is shown although no reference exists to validate it.
GEOMETRIC = frozenset({"orientation"})
SHOW_MIN_KAPPA = 0.40  # "moderate" agreement (Landis & Koch) at least, or the app does not show it

HOW = {
    "shape": "ellipse fit (IoU with the moment ellipse) and convexity of the outline; round when "
             f"the short axis is at least {ROUND_AXIS_RATIO:.0%} of the long one",
    "orientation": "depth against width of the outline (probe at the top): taller than wide is not parallel",
    "margin": "smoothness (ellipse fit, convexity, lobules lost to an opening) and the sharpness of the "
              "intensity step across the outline",
    "echo_pattern": "mean and spread of intensity inside the outline against the tissue around it",
    "posterior_features": "mean intensity below the lesion against the same depth beside it",
}


@dataclass(frozen=True)
class Descriptor:
    key: str  # "shape", "orientation", "margin", "echo_pattern", "posterior_features"
    value: str
    how: str
    agreement: tuple[float, float, int] | None  # kappa, accuracy, n (held-out), or None

    @property
    def label(self) -> str:
        return self.key.replace("_", " ").capitalize()

    @property
    def validated(self) -> bool:
        return self.agreement is not None and self.agreement[0] >= SHOW_MIN_KAPPA

    @property
    def shown(self) -> bool:
        """Shown in the app: agrees well enough with radiologists, or is a geometric definition."""
        return self.validated or self.key in GEOMETRIC

    def agreement_text(self) -> str:
        if self.agreement is None:
            return ("geometric definition, not validated against radiologists (no reference)"
                    if self.key in GEOMETRIC else "not validated (no radiologists' reference for it)")
        k, acc, n = self.agreement
        return (f"agreement with radiologists: kappa {k:.2f}, {acc * 100:.0f} % of {n} held-out "
                "BrEaST-Lesions-USG lesions (their outlines)")


# --- geometry and intensity features -------------------------------------------------------------


def _dilate_axis(m: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Max over a window of 2r + 1 along one axis (box sums of a running cumulative sum)."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(m.astype(np.int32), pad), axis=axis)
    n = m.shape[axis]
    hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) > 0


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    """Dilation by a (2r + 1)-square, separable: cost independent of r."""
    if r <= 0:
        return m
    return _dilate_axis(_dilate_axis(m, r, 1), r, 0)


def _erode(m: np.ndarray, r: int) -> np.ndarray:
    return ~_dilate(~m, r)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def outline_features(image: np.ndarray, mask: np.ndarray) -> dict[str, float] | None:
    """Features of the largest outlined region; None for an empty or tiny mask."""
    grey = np.asarray(image)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(axis=2)
    grey = grey.astype(np.float32)
    m = largest_component(np.asarray(mask, bool))
    area = int(m.sum())
    if area < 30:
        return None
    h, w = m.shape
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bh, bw = y1 - y0, x1 - x0
    eq_r = math.sqrt(area / math.pi)
    pad = int(max(6, 0.6 * eq_r)) + 2
    cy0, cy1, cx0, cx1 = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
    mc, gc = m[cy0:cy1, cx0:cx1], grey[cy0:cy1, cx0:cx1]

    # Moments: ellipse of the same second moments.
    yc, xc = ys.mean(), xs.mean()
    cov = np.cov(np.stack([xs - xc, ys - yc]))
    evals, evecs = np.linalg.eigh(cov)
    l2, l1 = max(evals[0], 1e-9), max(evals[1], 1e-9)
    a, b = 2 * math.sqrt(l1), 2 * math.sqrt(l2)  # semi-axes
    vx, vy = evecs[:, 1]
    yy, xx = np.mgrid[cy0:cy1, cx0:cx1]
    u = (xx + 0.0 - xc) * vx + (yy - yc) * vy
    v = -(xx - xc) * vy + (yy - yc) * vx
    ell = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    iou = float((ell & mc).sum() / max(1, (ell | mc).sum()))

    # Convexity.
    rows = np.flatnonzero(mc.any(axis=1))
    first = mc[rows].argmax(axis=1)
    last = mc.shape[1] - mc[rows][:, ::-1].argmax(axis=1)  # end-exclusive
    hull = _convex_hull(extent_corners(rows, first, last))
    solidity = area / max(1.0, _polygon_area(hull)) if len(hull) >= 3 else 1.0

    # Lobules / spicules: share of the area an opening of radius ~10 % of the size removes.
    k = max(1, round(0.12 * eq_r))
    opened = _dilate(_erode(mc, k), k) & mc
    open_loss = float((mc & ~opened).sum() / area)

    # Intensities: inside, a ring around (outside), and the edge step.
    ring_w = max(3, round(0.35 * eq_r))
    outer = _dilate(mc, ring_w) & ~mc
    thin = max(2, round(0.10 * eq_r))
    inner_edge = mc & ~_erode(mc, thin)
    outer_edge = _dilate(mc, thin) & ~mc
    inside = gc[mc]
    ring = gc[outer]
    inside_mean, ring_mean = float(inside.mean()), float(ring.mean()) if ring.size else float(inside.mean())
    ring_std = float(ring.std()) if ring.size else 1.0
    edge_step = (float(gc[outer_edge].mean()) - float(gc[inner_edge].mean())) / (ring_std + 1.0)
    inside_cv = float(inside.std() / (inside_mean + 1.0))

    # Posterior: below the lesion (central 60 % of its width) against the same depth beside it.
    depth = max(4, bh // 2)
    py0, py1 = min(h, y1 + 2), min(h, y1 + 2 + depth)
    mid0, mid1 = x0 + int(0.2 * bw), x1 - int(0.2 * bw)
    posterior = float("nan")
    if py1 - py0 >= 3 and mid1 > mid0:
        below = grey[py0:py1, mid0:mid1].mean()
        side_w = max(4, bw // 2)
        left = grey[py0:py1, max(0, x0 - side_w):x0]
        right = grey[py0:py1, x1:min(w, x1 + side_w)]
        beside = np.concatenate([left.ravel(), right.ravel()])
        if beside.size:
            posterior = float((below + 1.0) / (beside.mean() + 1.0))
    return {
        "area_px": float(area),
        "axis_ratio": float(b / a),
        "ellipse_iou": iou,
        "solidity": float(solidity),
        "open_loss": open_loss,
        "depth_to_width": float(bh / max(1, bw)),
        "inside_mean": inside_mean,
        "ring_mean": ring_mean,
        "inside_rel": float((inside_mean + 1.0) / (ring_mean + 1.0)),
        "inside_cv": inside_cv,
        "edge_step": float(edge_step),
        "posterior_ratio": posterior,
    }


# --- the rules -----------------------------------------------------------------------------------


def margin_score(f: dict[str, float]) -> float:
    """> MARGIN_SCORE: circumscribed (a logistic score; its weights are in MARGIN_WEIGHTS)."""
    z = [(f[k] - m) / sd for k, m, sd in zip(MARGIN_FEATURES, MARGIN_MEAN, MARGIN_SD, strict=True)]
    return float(np.dot(z, MARGIN_WEIGHTS) + MARGIN_BIAS)


def classify(f: dict[str, float]) -> dict[str, str]:
    regular = f["ellipse_iou"] >= SHAPE_ELLIPSE_IOU and f["solidity"] >= SHAPE_SOLIDITY
    shape = ("round" if f["axis_ratio"] >= ROUND_AXIS_RATIO else "oval") if regular else "irregular"
    orientation = "not parallel" if f["depth_to_width"] > 1.0 else "parallel"
    margin = "circumscribed" if margin_score(f) > MARGIN_SCORE else "not circumscribed"
    # Heterogeneous and complex cystic/solid are not derived: no rule found that separates them.
    if f["inside_rel"] < ANECHOIC_REL and f["inside_cv"] > ANECHOIC_CV:
        echo = "anechoic"
    elif f["inside_rel"] >= HYPERECHOIC_REL:
        echo = "hyperechoic"
    elif f["inside_rel"] >= ISOECHOIC_REL:
        echo = "isoechoic"
    else:
        echo = "hypoechoic"
    p = f["posterior_ratio"]
    if not math.isfinite(p):
        posterior = "not assessable"
    elif p >= POSTERIOR_ENHANCEMENT:
        posterior = "enhancement"
    elif p <= POSTERIOR_SHADOWING:
        posterior = "shadowing"
    else:
        posterior = "no posterior features"
    return {"shape": shape, "orientation": orientation, "margin": margin, "echo_pattern": echo,
            "posterior_features": posterior}


def describe(image: np.ndarray, mask: np.ndarray, *, shown_only: bool = False) -> list[Descriptor]:
    """Descriptors of the largest outlined region (empty list without an outline)."""
    f = outline_features(image, mask)
    if f is None:
        return []
    values = classify(f)
    out = [Descriptor(k, values[k], HOW[k], AGREEMENT.get(k)) for k in HOW]
    return [d for d in out if d.shown] if shown_only else out


def cohen_kappa(a: list[Any], b: list[Any]) -> float:
    """Cohen's kappa of two raters' labels (unweighted)."""
    if len(a) != len(b) or not a:
        raise ValueError("two equally long, non-empty label lists are needed")
    cats = sorted(set(a) | set(b), key=str)
    idx = {c: i for i, c in enumerate(cats)}
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        m[idx[x], idx[y]] += 1
    n = m.sum()
    po = np.trace(m) / n
    pe = float((m.sum(0) * m.sum(1)).sum() / (n * n))
    return 1.0 if pe == 1.0 else float((po - pe) / (1 - pe))
