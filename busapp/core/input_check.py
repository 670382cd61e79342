"""Is this image like the ones the model was trained on? Warnings that never block a result.

Four checks, each with a threshold fitted on data (``input_check_params.json``, or the model card's
``"input_check"`` block, which wins; ``scripts/fit_input_check.py`` writes both and reports how
well they separate):

- colour: colour Doppler or a colour overlay (the model saw grey-scale B-mode only);
- not ultrasound / blank: a photo, a document or screenshot, an X-ray, a blank frame;
- lesion crop: a tight crop around a lesion instead of a full frame;
- unlike the training images: a Mahalanobis distance over 14 cheap image statistics
  (grey-level distribution, black background, speckle texture, depth profile) whose mean and
  covariance are fitted on the model's own training sites' images ("distance"); whether an image
  is ultrasound at all is the same distance from every site the check was fitted on ("ultrasound"),
  so a model trained on fewer sites does not call another hospital's frames "not ultrasound". Image statistics rather than the network's
  own features: they cost a few milliseconds, need no second forward pass and no model change,
  and are measured on held-out hospitals like any other choice (leave-one-site-out, see the
  params' ``"separation"`` block).

No Qt here; numpy and Pillow only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from busapp.core.preprocess import to_grey_u8

PARAMS_FILE = Path(__file__).with_name("input_check_params.json")
MIN_SIDE = 16  # pixels: below this no statistic means anything (a thumbnail, a line)
STAT_SIZE = 256  # statistics are taken on the image scaled to this longest side (the model's view)
FEATURES = (
    "mean", "std", "dark", "bright", "entropy", "gradient", "speckle", "flat",
    "border_dark", "centre_mean", "depth_slope", "aspect", "local_contrast", "smooth",
)


@dataclass(frozen=True)
class InputWarning:
    code: str  # colour | not_ultrasound | blank | lesion_crop | unlike_training
    message: str  # one sentence for the reader

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def warnings_csv(warnings: tuple[InputWarning, ...]) -> str:
    """The warnings' codes for one CSV cell (``colour;lesion_crop``), empty when there are none."""
    return ";".join(w.code for w in warnings)


# --- statistics ----------------------------------------------------------------------------------


def _rgb_u8(image: np.ndarray) -> np.ndarray | None:
    """HxWx3 uint8 colour channels, or None for a grey image."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        return None
    rgb = a[:, :, :3]
    if rgb.dtype == np.uint8:
        return rgb
    f = rgb.astype(np.float64)
    hi = float(np.nanmax(f)) if f.size else 0.0
    return np.clip(f * (255.0 / hi) if hi > 0 else f, 0, 255).astype(np.uint8)


def _shrink(a: np.ndarray, size: int = STAT_SIZE) -> np.ndarray:
    h, w = a.shape[:2]
    s = size / max(h, w)
    if s >= 1:
        return a
    im = Image.fromarray(a)
    return np.asarray(im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))


def colour_fraction(image: np.ndarray) -> float:
    """Share of pixels with clear colour (max - min channel >= 60 of 255): Doppler, overlays, photos.
    Grey B-mode with a scanner's tint stays far below that chroma."""
    rgb = _rgb_u8(image)
    if rgb is None:
        return 0.0
    rgb = _shrink(rgb).astype(np.int16)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return float((chroma >= 60).mean())


def _integral(g: np.ndarray, pad: int) -> np.ndarray:
    """Summed-area table of the integer image ``g`` padded by ``pad`` (edges repeated), a zero row
    and column first. In int64 the box sums are exact; one table serves every box up to 2 * pad + 1."""
    a = np.pad(g, pad, mode="edge").astype(np.int64)
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), a.dtype)
    np.cumsum(a, axis=0, out=c[1:, 1:])
    np.cumsum(c[1:, 1:], axis=1, out=c[1:, 1:])
    return c


def _box_mean(c: np.ndarray, pad: int, k: int, shape: tuple[int, int]) -> np.ndarray:
    """Mean over the k x k window centred on each pixel, from ``_integral(g, pad)``."""
    h, w = shape
    o = pad - k // 2
    s = c[o + k : o + k + h, o + k : o + k + w] - c[o : o + h, o + k : o + k + w]
    s -= c[o + k : o + k + h, o : o + w] - c[o : o + h, o : o + w]
    return s / (k * k)


def image_stats(image: np.ndarray) -> dict[str, float]:
    """The statistics the distance is measured on, from the grey image the model sees."""
    g8 = to_grey_u8(image)
    h0, w0 = g8.shape
    gu = _shrink(g8)
    h, w = gu.shape
    g = gu.astype(np.float64)
    hist = np.bincount(gu.ravel(), minlength=256) / gu.size
    nz = hist[hist > 0]
    gi = gu.astype(np.int16)
    grad = (np.abs(np.diff(gi, axis=1))[:-1, :] + np.abs(np.diff(gi, axis=0))[:, :-1]).astype(np.float64)
    lit = gu[:-1, :-1] > 15
    # Box means from two exact integer summed-area tables (the image and its square), shared by
    # the 3x3, 5x5 and 9x9 windows.
    c1 = _integral(gu, 4)
    # speckle: fine-scale variation against a 3x3 box mean, relative to the lit tissue's spread
    box = _box_mean(c1, 4, 3, (h, w))
    sd = float(g.std())
    by, bx = max(1, h // 12), max(1, w // 12)
    border = np.concatenate([g[:by].ravel(), g[-by:].ravel(), g[:, :bx].ravel(), g[:, -bx:].ravel()])
    centre = g[h // 4 : h - h // 4, w // 4 : w - w // 4]
    rows = g.mean(axis=1)
    depth = np.linspace(-1, 1, h)
    # Speckle never leaves tissue perfectly smooth: local (5x5) spread where the image is lit;
    # photos, documents and drawings have smooth areas that ultrasound lacks.
    m5 = _box_mean(c1, 4, 5, (h, w))
    sd5 = np.sqrt(np.maximum(_box_mean(_integral(gi.astype(np.int32) ** 2, 2), 2, 5, (h, w)) - m5 * m5, 0.0))
    tissue = _box_mean(c1, 4, 9, (h, w)) > 20
    return {
        "mean": float(g.mean() / 255),
        "std": sd / 255,
        "dark": float(np.sqrt((g <= 15).mean())),
        "bright": float(np.sqrt((g >= 235).mean())),
        "entropy": float(-(nz * np.log2(nz)).sum() / 8),
        "gradient": float(grad.mean() / 255),
        "speckle": float(np.abs(g - box).mean() / (sd + 1.0)),
        "flat": float(np.sqrt((grad[lit] == 0).mean())) if lit.any() else 1.0,
        "border_dark": float((border <= 15).mean()),
        "centre_mean": float(centre.mean() / 255) if centre.size else float(g.mean() / 255),
        "depth_slope": float(np.polyfit(depth, rows, 1)[0] / 255) if h > 2 else 0.0,
        "aspect": float(np.log(w0 / h0)),
        "local_contrast": float(np.median(sd5[tissue] / (m5[tissue] + 1.0))) if tissue.any() else 0.0,
        "smooth": float(np.sqrt((sd5[tissue] < 2.0).mean())) if tissue.any() else 1.0,
    }


def stats_vector(stats: dict[str, float]) -> np.ndarray:
    return np.array([stats[k] for k in FEATURES], np.float64)


def mahalanobis(x: np.ndarray, mean: np.ndarray, inv_cov: np.ndarray) -> np.ndarray:
    """Distance of each row of ``x`` (or one vector) from the fitted distribution."""
    d = np.atleast_2d(x) - mean
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv_cov, d), 0.0))


def fit_distribution(x: np.ndarray, shrinkage: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance of the rows of ``x``; the covariance shrunk towards its diagonal
    so that a statistic that barely varies at the training sites cannot dominate the distance."""
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov)) + 1e-9 * np.eye(len(mean))
    return mean, np.linalg.inv(cov)


def lesion_box_fraction(mask: np.ndarray | None) -> float:
    """Share of the image covered by the bounding box of the outlined region (0 without one)."""
    if mask is None:
        return 0.0
    m = np.asarray(mask, bool)
    if not m.any():
        return 0.0
    ys, xs = np.nonzero(m)
    return float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) / m.size)


# --- parameters and the check ----------------------------------------------------------------------


def load_params(card: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's ``"input_check"`` block if it has one, else the fitted parameters shipped here."""
    if card and isinstance(card.get("input_check"), dict):
        return card["input_check"]
    return json.loads(PARAMS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class CheckScores:
    """The raw scores behind the warnings (for validation reports and threshold fitting)."""

    colour_fraction: float
    std: float
    distance: float  # from the model's training sites
    box_fraction: float
    border_dark: float
    us_distance: float | None = None  # from all the ultrasound the check was fitted on (None: = distance)


@dataclass(frozen=True)
class ImagePart:
    """What the check takes from the image alone (no model): worked out ahead of the model where a
    second thread is free (the batch's reader), so the model's thread does not wait on it."""

    stats: dict[str, float]
    colour_fraction: float


def image_part(image: np.ndarray) -> ImagePart:
    return ImagePart(image_stats(image), colour_fraction(image))


def scores(image: np.ndarray, mask: np.ndarray | None, params: dict[str, Any],
           part: ImagePart | None = None) -> CheckScores:
    part = part if part is not None else image_part(image)
    st = part.stats
    v = stats_vector(st)

    def dist(block: dict[str, Any]) -> float:
        return float(mahalanobis(v, np.asarray(block["mean"]), np.asarray(block["inv_cov"]))[0])

    d = dist(params["distance"])
    us = dist(params["ultrasound"]) if "ultrasound" in params else None
    return CheckScores(part.colour_fraction, st["std"], d, lesion_box_fraction(mask), st["border_dark"], us)


def warnings_from_scores(s: CheckScores, params: dict[str, Any]) -> tuple[InputWarning, ...]:
    t = params["thresholds"]
    out: list[InputWarning] = []
    if s.std * 255 < t["blank_std_below"]:
        return (InputWarning("blank", "This frame is blank or almost uniform, so there is nothing for the model "
                                      "to read; the result is meaningless."),)
    photo = s.colour_fraction >= t["photo_colour_at_least"]
    us_distance = s.distance if s.us_distance is None else s.us_distance
    if photo or us_distance >= t["not_ultrasound_distance"]:
        why = "it is largely in colour" if photo else "its grey levels and texture are far from any ultrasound frame"
        out.append(InputWarning("not_ultrasound", f"This does not look like a breast ultrasound image ({why}); "
                                                  "the model's result does not apply to it."))
    elif s.colour_fraction >= t["colour_at_least"]:
        out.append(InputWarning("colour", f"Colour Doppler or a colour overlay covers {s.colour_fraction:.0%} of "
                                          "this image; the model was trained on grey-scale images, so colour "
                                          "may mislead it."))
    if not out and s.box_fraction >= t["crop_box_at_least"] and s.border_dark < t["crop_border_dark_below"]:
        out.append(InputWarning("lesion_crop", "This looks like a tight crop around a lesion rather than a full "
                                               "ultrasound frame; the model was trained on full frames, so the "
                                               "result is less reliable."))
    if not out and s.distance >= t["unlike_distance"]:
        out.append(InputWarning("unlike_training", f"This image is unlike the training images (distance "
                                                   f"{s.distance:.1f}, flagged from {t['unlike_distance']:.1f}); "
                                                   "the result is less reliable."))
    return tuple(out)


def check(image: np.ndarray, prediction: Any = None, bundle: Any = None,
          params: dict[str, Any] | None = None, part: ImagePart | None = None) -> tuple[InputWarning, ...]:
    """Warnings for one decoded frame (any layout ``to_grey_u8`` takes); the prediction's mask, if
    given, is used for the lesion-crop check; ``part``: ``image_part(image)`` if worked out ahead.
    Never raises on an odd image: it warns instead."""
    p = params or load_params(getattr(bundle, "card", None))
    mask = getattr(prediction, "mask", None)
    h, w = np.asarray(image).shape[:2]
    if min(h, w) < MIN_SIDE:
        return (InputWarning("not_ultrasound", f"This image is only {w} x {h} pixels, too small to be an "
                                               "ultrasound frame; the model's result does not apply to it."),)
    try:
        s = scores(image, mask, p, part)
        if not np.isfinite([s.distance, s.us_distance if s.us_distance is not None else 0.0]).all():
            raise ValueError("its statistics are undefined")
        return warnings_from_scores(s, p)
    except (ValueError, np.linalg.LinAlgError) as e:  # an image the statistics cannot read
        return (InputWarning("not_ultrasound", f"This image could not be checked ({e}); treat the result "
                                               "with caution."),)
