"""The card's figures: a bundle's exported LiteRT file run through ``busapp.core.predictor`` on a
split at each image's original resolution (the path the app runs), pooled and per data set, with
bootstrap intervals over duplicate groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from busapp.core.predictor import Predictor
from busapp.training.data import CLASSES, SITES, Record, load_image, load_mask, read_all, read_split
from busapp.training.metrics import bootstrap_ci, dice_iou, point_metrics


def predict_records(predictor: Predictor, records: list[Record], data_root: Path) -> dict[str, np.ndarray]:
    """Per-image outputs on a list of records, at each image's original resolution."""
    probs, dice, iou, nonempty = [], [], [], []
    for rec in records:
        img = load_image(data_root, rec)
        pred = predictor.predict(img)
        probs.append([pred.probabilities[c] for c in CLASSES])
        nonempty.append(bool(pred.mask.any()))
        if rec.label == "normal":
            dice.append(np.nan)
            iou.append(np.nan)
        else:
            d, j = dice_iou(pred.mask, load_mask(data_root, rec, img.shape))
            dice.append(d)
            iou.append(j)
    return {
        "y": np.array([r.label_index for r in records]),
        "probs": np.array(probs, float),
        "dice": np.array(dice),
        "iou": np.array(iou),
        "nonempty": np.array(nonempty),
        "groups": np.array([r.group for r in records]),
        "datasets": np.array([r.dataset for r in records]),
    }


def compute_metrics(out: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    def fn(idx: np.ndarray) -> dict[str, float]:
        return point_metrics(out["y"][idx], out["probs"][idx], out["dice"][idx], out["iou"][idx], out["nonempty"][idx])

    point = fn(np.arange(len(out["y"])))
    ci = bootstrap_ci(list(out["groups"]), fn, n_boot=n_boot) if n_boot else {}
    return {k: {"value": v, **({"ci95": list(ci[k])} if k in ci else {})} for k, v in point.items()}


def metrics_by_dataset(out: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    """``compute_metrics`` on each data set's images alone (``predict_records`` outputs): the
    sites differ in country, scanners and case mix, so the pooled figures can hide a weak one. A
    figure the subset cannot give (no normal image, say) is None."""
    result = {}
    for name in SITES:
        sel = out["datasets"] == name
        if sel.any():
            result[name] = subset_figures({k: v[sel] for k, v in out.items()}, n_boot)
    return result


def subset_figures(out: dict[str, np.ndarray], n_boot: int) -> dict:
    """Image counts and ``compute_metrics`` of a subset of ``predict_records`` outputs, JSON-ready
    (None where the subset has nothing to measure)."""
    return {"n_images": len(out["y"]), "n_normal_images": int((out["y"] == 0).sum()),
            "metrics": {k: {kk: finite_or_none(vv) for kk, vv in v.items()}
                        for k, v in compute_metrics(out, n_boot).items()}}


def finite_or_none(v):
    """A figure for JSON: NaN (nothing to measure) as None; lists element-wise."""
    if isinstance(v, list):
        return [finite_or_none(x) for x in v]
    return None if v is None or not np.isfinite(v) else float(v)


def evaluate_bundle(bundle: Path, data_root: Path, split_path: Path, n_boot: int = 0, split: str = "test",
                    datasets: tuple[str, ...] | None = None) -> dict:
    """Re-run a bundle on a split; used by the card check in CI and ``busapp-train evaluate``.
    ``datasets``: the sites to read (default: those the card's test figures cover)."""
    if datasets is None:
        from busapp.core.model_bundle import read_card

        card = read_card(bundle / "card.json")
        datasets = tuple(card.metrics.test_by_dataset) or SITES
    assignment = read_split(split_path)
    records = [r for r in read_all(data_root, datasets) if assignment.get(r.key) == split]
    out = predict_records(Predictor(bundle), records, data_root)
    metrics = compute_metrics(out, n_boot)
    return {"n": len(records), "metrics": {k: v["value"] for k, v in metrics.items()}, "full": metrics,
            "by_dataset": metrics_by_dataset(out, n_boot)}
