"""Features of the outlined lesion for busnet 2's second stage, computed on the model's own input.

The second stage (a multinomial logistic model whose weights the card carries) sees the network's
class log-probabilities beside what radiologists read from a lesion's outline and echo: shape,
orientation, margin, echo pattern, posterior features. Outlines transfer across hospitals far better
than the network's malignancy judgement does, so these descriptors are the part that should hold at
a site the model never saw.

Everything is measured on the letterboxed model input (the square the network saw, aspect ratio
kept) and the network's lesion probability map, so training and the app compute them identically
from the same arrays. Numpy only.
"""

from __future__ import annotations

import numpy as np

from busapp.core.measure import _convex_hull, extent_corners, largest_component

FEATURE_NAMES = (
    "lesion_present",   # 1 if the map has a region >= 0.5
    "area_share",       # lesion area / image area (letterboxed region)
    "depth_to_width",   # log of bbox height / width: > 0 taller than wide
    "compactness",      # 4 pi area / perimeter^2 (1 for a disc, low for lobulated or spiculated)
    "solidity",         # area / convex hull area (low: concave, irregular)
    "ellipse_misfit",   # share of pixels outside the moment-equivalent ellipse
    "radial_roughness", # std / mean of the boundary's distance to the centroid, minus an ellipse's
    "margin_blur",      # mean of p(1-p) x 4 in a band around the outline: an indistinct margin
    "echo_inside",      # mean grey inside, relative to the image's tissue mean
    "echo_contrast",    # inside minus a rim just outside the lesion (hypoechoic: negative)
    "heterogeneity",    # std of grey inside / tissue std
    "posterior",        # below the lesion minus beside it at the same depth (shadowing: negative)
)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it."""
    p = np.pad(mask, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~inner


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        p = np.pad(out, 1)
        out = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return out


def _perimeter(mask: np.ndarray) -> float:
    """Edge count between mask and background (crack length), corrected towards Euclidean."""
    p = np.pad(mask, 1).astype(np.int8)
    edges = np.abs(np.diff(p, axis=0)).sum() + np.abs(np.diff(p, axis=1)).sum()
    return float(edges) * (np.pi / 4)  # a digital disc's crack length is 4/pi x its circumference


def lesion_features(grey: np.ndarray, mask_prob: np.ndarray, region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(size, size) uint8-valued model input (before intensity scaling) and the network's (size,
    size) lesion probability -> ``FEATURE_NAMES`` values (float64). ``region``: (y0, y1, x0, x1) of
    the image inside the letterbox (padding excluded from tissue statistics)."""
    g = np.asarray(grey, np.float64)
    prob = np.asarray(mask_prob, np.float64)
    y0, y1, x0, x1 = region or (0, g.shape[0], 0, g.shape[1])
    tissue = np.zeros(g.shape, bool)
    tissue[y0:y1, x0:x1] = True
    t_mean = float(g[tissue].mean()) if tissue.any() else 0.0
    t_std = float(g[tissue].std()) + 1.0
    tissue_area = max(int(tissue.sum()), 1)
    out = np.zeros(len(FEATURE_NAMES))
    mask = largest_component((prob >= 0.5) & tissue)
    area = int(mask.sum())
    if area < 4:
        return out
    # Everything local is measured in a window around the lesion: a fraction of the image's cost.
    rows, cols = np.nonzero(mask)
    h = int(rows.max() - rows.min() + 1)
    w = int(cols.max() - cols.min() + 1)
    m = max(h, w)
    wy0, wy1 = max(0, rows.min() - m), min(g.shape[0], rows.max() + 1 + m)
    wx0, wx1 = max(0, cols.min() - m), min(g.shape[1], cols.max() + 1 + m)
    g, prob, mask, tissue = (a[wy0:wy1, wx0:wx1] for a in (g, prob, mask, tissue))
    rows, cols = rows - wy0, cols - wx0
    y1, x0, x1 = y1 - wy0, max(0, x0 - wx0), x1 - wx0
    perimeter = max(_perimeter(mask), 1.0)
    b = _boundary(mask)
    by, bx = np.nonzero(b)
    row_first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # np.nonzero: row-major order
    row_last = np.r_[row_first[1:], len(rows)] - 1
    hull = _convex_hull(extent_corners(rows[row_first], cols[row_first], cols[row_last] + 1))
    hx, hy = hull[:, 0], hull[:, 1]
    hull_area = 0.5 * abs(float(np.dot(hx, np.roll(hy, 1)) - np.dot(hy, np.roll(hx, 1))))

    cy, cx = rows.mean(), cols.mean()
    cov = np.cov(np.stack([cols - cx, rows - cy])) + np.eye(2) * (1 / 12)
    inv = np.linalg.inv(cov)
    yy, xx = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
    dx, dy = xx - cx, yy - cy
    ellipse = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy <= 4.0  # 2 sigma
    misfit = float((mask ^ ellipse).sum()) / area

    radial = np.hypot(bx - cx, by - cy)
    # An ellipse's own radial spread, so elongation alone does not count as rough
    ev = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 1e-9))
    theta = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    ell_r = np.hypot(2 * ev[0] * np.cos(theta), 2 * ev[1] * np.sin(theta))
    roughness = float(radial.std() / max(radial.mean(), 1e-6)) - float(ell_r.std() / ell_r.mean())

    band = _dilate(b, 2) & tissue
    margin_blur = float((4 * prob[band] * (1 - prob[band])).mean()) if band.any() else 0.0

    inside = g[mask]
    ring = _dilate(mask, max(2, round(0.15 * float(np.sqrt(area))))) & ~mask & tissue
    rim_mean = float(g[ring].mean()) if ring.any() else t_mean
    # Posterior: a band as wide as the lesion, below it, against bands beside it at that depth.
    r_lo = int(rows.max()) + 1
    r_hi = min(y1, r_lo + max(2, h // 2))
    c_lo, c_hi = int(cols.min()), int(cols.max()) + 1
    below = g[r_lo:r_hi, c_lo:c_hi]
    side = np.concatenate([g[r_lo:r_hi, max(x0, c_lo - w // 2) : c_lo].ravel(),
                           g[r_lo:r_hi, c_hi : min(x1, c_hi + w // 2)].ravel()])
    posterior = (float(below.mean()) - float(side.mean())) / t_std if below.size and side.size else 0.0

    out[:] = (
        1.0,
        area / tissue_area,
        float(np.log(h / w)),
        min(1.5, 4 * np.pi * area / perimeter**2),
        area / max(hull_area, 1.0),
        misfit,
        roughness,
        margin_blur,
        (float(inside.mean()) - t_mean) / t_std,
        (float(inside.mean()) - rim_mean) / t_std,
        float(inside.std()) / t_std,
        posterior,
    )
    return out
