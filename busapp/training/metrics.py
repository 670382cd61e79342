"""Model-quality metrics (numpy only) with group bootstrap confidence intervals."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from busapp.training.data import CLASSES


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    p, t = pred.astype(bool), truth.astype(bool)
    inter = np.logical_and(p, t).sum()
    total = p.sum() + t.sum()
    union = np.logical_or(p, t).sum()
    if total == 0:
        return 1.0, 1.0
    return float(2 * inter / total), float(inter / union)


def dice_per_image(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of each image in a (N, H, W) stack of bool masks (0 where both are empty: callers
    average over lesion images only)."""
    inter = (pred & truth).sum(axis=(1, 2))
    return 2 * inter / np.maximum(pred.sum(axis=(1, 2)) + truth.sum(axis=(1, 2)), 1)


def confusion(y: np.ndarray, pred: np.ndarray, n: int = 3) -> np.ndarray:
    cm = np.zeros((n, n), int)
    np.add.at(cm, (y, pred), 1)
    return cm


def macro_f1(y: np.ndarray, pred: np.ndarray, n: int = 3) -> float:
    cm = confusion(y, pred, n)
    f1s = []
    for k in range(n):
        tp, fp, fn = cm[k, k], cm[:, k].sum() - cm[k, k], cm[k, :].sum() - cm[k, k]
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted half.
    Pairwise on purpose: test sets here have a few hundred images, and it is plainly correct."""
    pos, neg = scores[positive][:, None], scores[~positive][None, :]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE with equal-width confidence bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def point_metrics(y: np.ndarray, probs: np.ndarray, dice: np.ndarray, iou: np.ndarray, mask_nonempty: np.ndarray) -> dict[str, float]:
    """All card metrics for one set of images. dice/iou are NaN for normal images."""
    pred = probs.argmax(axis=1)
    out: dict[str, float] = {
        "accuracy": float((pred == y).mean()),
        "macro_f1": macro_f1(y, pred),
    }
    for k, name in enumerate(CLASSES):
        sel = y == k
        out[f"sensitivity_{name}"] = float((pred[sel] == k).mean()) if sel.any() else float("nan")
    lesion = y > 0
    bm = probs[lesion]
    out["auc_benign_vs_malignant"] = auc(bm[:, 2] / np.maximum(bm[:, 1] + bm[:, 2], 1e-12), y[lesion] == 2)
    d, j = dice[lesion], iou[lesion]
    out["dice_mean"], out["dice_median"] = float(np.mean(d)), float(np.median(d))
    out["iou_mean"], out["iou_median"] = float(np.mean(j)), float(np.median(j))
    normal = y == 0
    out["normal_nonempty_mask_rate"] = float(mask_nonempty[normal].mean()) if normal.any() else float("nan")
    out["ece"] = expected_calibration_error(probs, y)
    return out


def bootstrap_ci(
    groups: Sequence[str],
    metric_fn: Callable[[np.ndarray], dict[str, float]],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals, resampling duplicate groups (not images) with replacement."""
    uniq = sorted(set(groups))
    index = {g: [] for g in uniq}
    for i, g in enumerate(groups):
        index[g].append(i)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([index[uniq[p]] for p in pick])
        for k, v in metric_fn(idx).items():
            samples.setdefault(k, []).append(v)
    out = {}
    for k, v in samples.items():
        arr = np.asarray(v, float)
        finite = arr[np.isfinite(arr)]  # NaN: nothing to measure in that resample (no normal image)
        out[k] = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))) if finite.size else (np.nan, np.nan)
    return out
