"""Out-of-fold outputs of cross-validation runs (``busapp-train fit --folds N --fold K``).

Each fold's model predicts the development images it never trained on; together the folds
cover all of train + val (762 images, ~95 normal) instead of the 136 validation images. That is
enough data to compare recipes, to fit a refit's temperature and to choose its outline rules on
models of the same recipe. Model resolution, like the checkpoint score; the test split is never
read here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from busapp.core.measure import largest_component
from busapp.core.model_bundle import MASK_KEEP
from busapp.core.predictor import outline_suppressed
from busapp.core.preprocess import letterbox_geometry
from busapp.training.data import CLASSES, Record
from busapp.training.finalize import (
    LOW_CONFIDENCE_BELOW,
    MASK_THRESHOLD,
    MIN_AREA_CANDIDATES,
    SUPPRESS_CANDIDATES,
    fit_temperature,
    fit_temperature_bias,
    load_member,
    member_outputs,
    pick_mask_rule,
)
from busapp.training.metrics import dice_per_image, expected_calibration_error, macro_f1, point_metrics

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
    letterbox region shares and the record keys.

    Several runs of the same fold (an ensemble's member recipes) are averaged as the exported
    graph averages its members; every fold must then have the same number of runs."""
    from busapp.training.dataset import cached_arrays, image_sizes
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

    parts: dict[str, list] = {k: [] for k in ("mask", "logits", "truth", "y", "region", "keys", "fold")}
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
        region = np.zeros(x.shape[:3], bool)
        for j, wh in enumerate(image_sizes(data_root, held_out, size)):
            lb = letterbox_geometry(*wh, size)
            region[j, lb.pad_y : lb.pad_y + lb.scaled_height, lb.pad_x : lb.pad_x + lb.scaled_width] = True
        for k, v in zip(parts, (mask[..., 0], logits, m[..., 0] > 0.5, y, region, [r.key for r in held_out],
                                    np.full(len(y), fold)), strict=True):
            parts[k].append(v)
        log.info("fold %d/%d (%s): %d held-out images", fold, n_folds, ", ".join(wd.name for wd in runs), len(held_out))
    return {k: np.concatenate(v) for k, v in parts.items()}


def recipes(work_dirs: list[Path]) -> list[dict]:
    """The distinct training configurations among the runs (one per member recipe)."""
    configs = {json.dumps(json.loads((wd / "config.json").read_text()), sort_keys=True) for wd in work_dirs}
    return [json.loads(c) for c in sorted(configs)]


# Adoption rules, fixed before their out-of-fold figures were seen (commit message of their
# introduction). A class bias must win on folds it was not fitted on; a mask post-processing on
# out-of-fold Dice, in most folds, without outlining more normal images.
BIAS_MIN_MACRO_F1_GAIN = 0.005
BIAS_MAX_ECE_LOSS = 0.01
POSTPROCESS_THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
POSTPROCESS_MIN_DICE_GAIN = 0.003


def choose_calibration(logits: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict:
    """Temperature alone, or temperature and class bias (``fit_temperature_bias``)? Each is fitted
    leaving one fold out and applied to that fold; the bias is adopted only if those held-out
    probabilities gain ``BIAS_MIN_MACRO_F1_GAIN`` macro-F1, lose no accuracy and lose at most
    ``BIAS_MAX_ECE_LOSS`` ECE. The adopted form is then fitted on all the images."""
    held_out = {"temperature": np.zeros(logits.shape), "temperature_and_bias": np.zeros(logits.shape)}
    for k in np.unique(fold):
        fit, apply = fold != k, fold == k
        held_out["temperature"][apply] = softmax(logits[apply] / fit_temperature(logits[fit], y[fit]))
        t, b = fit_temperature_bias(logits[fit], y[fit])
        held_out["temperature_and_bias"][apply] = softmax(logits[apply] / t + np.array(b))
    table = {}
    for name, p in held_out.items():
        pred = p.argmax(axis=1)
        table[name] = {"accuracy": float((pred == y).mean()), "macro_f1": macro_f1(y, pred),
                       "ece": expected_calibration_error(p, y)}
    a, b_ = table["temperature"], table["temperature_and_bias"]
    adopt = (b_["macro_f1"] - a["macro_f1"] >= BIAS_MIN_MACRO_F1_GAIN and b_["accuracy"] >= a["accuracy"]
             and b_["ece"] - a["ece"] <= BIAS_MAX_ECE_LOSS)
    if adopt:
        temperature, bias = fit_temperature_bias(logits, y)
    else:
        temperature, bias = fit_temperature(logits, y), [0.0] * logits.shape[1]
    return {"rule": (f"class bias adopted if, fitted leaving one fold out, it gains >= {BIAS_MIN_MACRO_F1_GAIN} "
                     f"macro-F1, no accuracy and loses <= {BIAS_MAX_ECE_LOSS} ECE on the held-out fold"),
            "leave_one_fold_out": table, "bias_adopted": bool(adopt), "temperature": temperature, "class_bias": bias}


def postprocessed_masks(mask_logits: np.ndarray, threshold: float, keep: str) -> np.ndarray:
    """Model-resolution masks as the app would draw them with this threshold and ``keep``."""
    masks = mask_logits >= np.log(threshold / (1 - threshold))
    if keep == "largest":
        masks = np.stack([largest_component(m) for m in masks])
    return masks


def choose_mask_postprocessing(oof: dict[str, np.ndarray]) -> dict:
    """Mask threshold and "all"/"largest" region, on out-of-fold Dice of lesion images (no outline
    rule: it is chosen afterwards on the masks chosen here). The best candidate replaces the
    shipped (``MASK_THRESHOLD``, "all") only if it gains ``POSTPROCESS_MIN_DICE_GAIN`` mean Dice,
    gains in most folds, and leaves no more normal images outlined."""
    lesion, fold = oof["y"] > 0, oof["fold"]
    rows = []
    for keep in MASK_KEEP:
        for t in POSTPROCESS_THRESHOLDS:
            masks = postprocessed_masks(oof["mask"], t, keep)
            dice = dice_per_image(masks, oof["truth"])
            rows.append({"mask_threshold": t, "mask_keep": keep, "dice_mean": float(dice[lesion].mean()),
                         "dice_per_fold": [float(dice[lesion & (fold == k)].mean()) for k in np.unique(fold)],
                         "normal_nonempty_rate": float(masks[~lesion].any(axis=(1, 2)).mean()) if (~lesion).any() else 0.0})
    base = next(r for r in rows if r["mask_threshold"] == MASK_THRESHOLD and r["mask_keep"] == "all")
    best = max(rows, key=lambda r: r["dice_mean"])
    folds_gained = sum(b > a for a, b in zip(base["dice_per_fold"], best["dice_per_fold"], strict=True))
    adopt = (best["dice_mean"] - base["dice_mean"] >= POSTPROCESS_MIN_DICE_GAIN
             and folds_gained > len(base["dice_per_fold"]) / 2
             and best["normal_nonempty_rate"] <= base["normal_nonempty_rate"])
    chosen = best if adopt else base
    return {"rule": (f"the best out-of-fold Dice replaces threshold {MASK_THRESHOLD}, all regions, if it gains >= "
                     f"{POSTPROCESS_MIN_DICE_GAIN}, gains in most folds and outlines no more normal images"),
            "candidates": rows, "adopted": bool(adopt),
            "mask_threshold": chosen["mask_threshold"], "mask_keep": chosen["mask_keep"]}


def report(oof: dict[str, np.ndarray]) -> dict:
    """Classification and segmentation figures over the out-of-fold images; the calibration, mask
    post-processing and outline rule chosen on them, in that order. ``figures`` apply all three
    (as the card's test figures apply the shipped ones); the raw masks' are also given."""
    y, logits = oof["y"], oof["logits"]
    calibration = choose_calibration(logits, y, oof["fold"])
    temperature = calibration["temperature"]
    probs = softmax(logits / temperature + np.array(calibration["class_bias"]))
    postprocessing = choose_mask_postprocessing(oof)
    pred_masks = postprocessed_masks(oof["mask"], postprocessing["mask_threshold"], postprocessing["mask_keep"])
    truth = oof["truth"]
    lesion = y > 0

    dice_all = dice_per_image(pred_masks, truth)
    inter = (pred_masks & truth).sum(axis=(1, 2))
    iou_all = inter / np.maximum((pred_masks | truth).sum(axis=(1, 2)), 1)
    area = (pred_masks & oof["region"]).sum(axis=(1, 2)) / oof["region"].sum(axis=(1, 2))

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
        for f in MIN_AREA_CANDIDATES:
            empty = withheld | (area < f) | ~pred_masks.any(axis=(1, 2))
            empties.append(empty)
            rows.append({"suppress_mask_when_normal": when_normal, "suppress_mask_when_normal_at_least": at_least,
                         "min_area_fraction": f, "dice_mean": float(np.where(empty, 0.0, dice_all)[lesion].mean()),
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
        "class_bias": calibration["class_bias"],
        "calibration": calibration,
        "mask_postprocessing": postprocessing,
        "figures": figures(empties[i_chosen]),
        "figures_without_outline_rule": {**figures(~pred_masks.any(axis=(1, 2))),
                                         "ece_untempered": expected_calibration_error(softmax(logits), y)},
        "outline_rule": rows[i_chosen],
        "outline_rules": rows,
        "per_fold": per_fold,
    }
