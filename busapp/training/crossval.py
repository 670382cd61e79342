"""Out-of-fold outputs of cross-validation runs (``busapp-train fit --folds N --fold K``).

Each fold's model predicts the development images it never trained on; together the folds
cover all of train + val (762 images, ~95 normal) instead of the 136 validation images. That is
enough data to compare recipes, to fit a refit's temperature and to choose its outline rule on
models of the same recipe. Model resolution, like the checkpoint score; the test split is never
read here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from busapp.core.predictor import outline_suppressed
from busapp.training.calibration import fit_temperature
from busapp.training.card_writer import LOW_CONFIDENCE_BELOW, MASK_THRESHOLD
from busapp.training.data import CLASSES, Record
from busapp.training.members import load_member, member_outputs
from busapp.training.metrics import dice_per_image, expected_calibration_error, macro_f1, point_metrics
from busapp.training.outline_rules import SUPPRESS_CANDIDATES, pick_mask_rule

log = logging.getLogger("busapp.training")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def out_of_fold(
    work_dirs: list[Path], dev: list[Record], data_root: Path, zoom_in: bool = False,
) -> dict[str, np.ndarray]:
    """Each fold's outputs on its held-out fold, averaged over the test-time views as the graph
    averages them (``member_outputs``), stacked: mask logits, class logits, masks, labels,
    the record keys and folds.

    Several runs of the same fold (an ensemble's member recipes) are averaged as the exported
    graph averages its members; every fold must then have the same number of runs."""
    from busapp.training.dataset import cached_arrays
    from busapp.training.split import make_folds

    by_fold: dict[int, list[Path]] = {}
    n_folds = None
    for wd in work_dirs:
        cv = json.loads((wd / "cv.json").read_text())
        if n_folds not in (None, cv["folds"]):
            raise ValueError(f"{wd}: fold {cv['fold']} of {cv['folds']} does not fit the other runs")
        n_folds = cv["folds"]
        by_fold.setdefault(cv["fold"], []).append(wd)
    if len({len(runs) for runs in by_fold.values()}) > 1 or len(set(work_dirs)) < len(work_dirs):
        raise ValueError(f"every fold needs the same number of distinct runs, got {[len(v) for v in by_fold.values()]}")

    parts: dict[str, list] = {k: [] for k in ("mask", "logits", "truth", "y", "keys", "fold")}
    folds = make_folds(dev, n_folds)
    for fold, runs in sorted(by_fold.items()):
        held_out = [r for r in dev if folds[r.key] == fold]
        members = [load_member(wd, i) for i, wd in enumerate(runs)]
        size = members[0].input.shape[1]
        if {m.input.shape[1] for m in members} != {size}:
            raise ValueError(f"fold {fold}: the runs differ in input size")
        x, m, y = cached_arrays(data_root, held_out, size, runs[0] / "cache")
        outputs = [member_outputs(member, x, zoom_in) for member in members]
        mask, logits = (np.mean([o[i] for o in outputs], axis=0) for i in (0, 1))
        for k, v in zip(parts, (mask[..., 0], logits, m[..., 0] > 0.5, y, [r.key for r in held_out],
                                    np.full(len(y), fold)), strict=True):
            parts[k].append(v)
        log.info("fold %d/%d (%s): %d held-out images", fold, n_folds, ", ".join(wd.name for wd in runs), len(held_out))
    return {k: np.concatenate(v) for k, v in parts.items()}


def recipes(work_dirs: list[Path]) -> list[dict]:
    """The distinct training configurations among the runs (one per member recipe)."""
    configs = {json.dumps(json.loads((wd / "config.json").read_text()), sort_keys=True) for wd in work_dirs}
    return [json.loads(c) for c in sorted(configs)]


def report(oof: dict[str, np.ndarray]) -> dict:
    """Classification and segmentation figures over the out-of-fold images, with the temperature
    and then the outline rule chosen on them. ``figures`` apply both (as the card's test figures
    apply the shipped ones); the raw masks' are also given. Masks: threshold ``MASK_THRESHOLD``,
    every region (the shipped post-processing)."""
    y, logits = oof["y"], oof["logits"]
    temperature = fit_temperature(logits, y)
    probs = softmax(logits / temperature)
    pred_masks = oof["mask"] >= np.log(MASK_THRESHOLD / (1 - MASK_THRESHOLD))
    truth = oof["truth"]
    lesion = y > 0

    dice_all = dice_per_image(pred_masks, truth)
    inter = (pred_masks & truth).sum(axis=(1, 2))
    iou_all = inter / np.maximum((pred_masks | truth).sum(axis=(1, 2)), 1)

    def figures(empty: np.ndarray) -> dict[str, float]:
        """The card's test figures, with the masks in ``empty`` withheld."""
        dice = np.where(lesion, np.where(empty, 0.0, dice_all), np.nan)
        iou = np.where(lesion, np.where(empty, 0.0, iou_all), np.nan)
        out = point_metrics(y, probs, dice, iou, pred_masks.any(axis=(1, 2)) & ~empty)
        return {k: float(v) for k, v in out.items()}

    rows, empties = [], []
    for when_normal, at_least in SUPPRESS_CANDIDATES:
        withheld = np.array([outline_suppressed(p, CLASSES, LOW_CONFIDENCE_BELOW, when_normal, at_least) is not None
                             for p in probs])
        empty = withheld | ~pred_masks.any(axis=(1, 2))
        empties.append(empty)
        rows.append({"suppress_mask_when_normal": when_normal, "suppress_mask_when_normal_at_least": at_least,
                     "dice_mean": float(np.where(empty, 0.0, dice_all)[lesion].mean()),
                     "normal_nonempty_rate": float((~empty[~lesion]).mean()) if (~lesion).any() else 0.0})
    chosen = pick_mask_rule(rows, "dice_mean", "normal_nonempty_rate")
    i_chosen = next(i for i, r in enumerate(rows) if all(r[k] == v for k, v in chosen.items()))
    pred, kept = probs.argmax(axis=1), np.where(empties[i_chosen], 0.0, dice_all)
    per_fold = [{"fold": int(k), "n_images": int((oof["fold"] == k).sum()),
                 "accuracy": float((pred[s] == y[s]).mean()), "macro_f1": macro_f1(y[s], pred[s]),
                 "dice_mean": float(kept[s & lesion].mean()) if (s & lesion).any() else None}
                for k in np.unique(oof["fold"]) for s in [oof["fold"] == k]]
    return {
        "n_images": len(y),
        "n_normal": int((~lesion).sum()),
        "temperature": temperature,
        "figures": figures(empties[i_chosen]),
        "figures_without_outline_rule": {**figures(~pred_masks.any(axis=(1, 2))),
                                         "ece_untempered": expected_calibration_error(softmax(logits), y)},
        "outline_rule": rows[i_chosen],
        "outline_rules": rows,
        "per_fold": per_fold,
    }
