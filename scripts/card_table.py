"""Print a model card's test metrics as the README's Markdown tables (no hand-copied figures):
the pooled test split, then the same figures per data set (site).

    python scripts/card_table.py models/busnet/card.json
"""

from __future__ import annotations

import json
import sys

# metric key -> (label, issue target as (comparison, value) or None)
ROWS = {
    "accuracy": ("3-class accuracy", (">=", 0.88)),
    "macro_f1": ("macro-F1", (">=", 0.85)),
    "sensitivity_normal": ("sensitivity normal", None),
    "sensitivity_benign": ("sensitivity benign", None),
    "sensitivity_malignant": ("sensitivity malignant", None),
    "auc_benign_vs_malignant": ("AUC benign vs malignant", (">=", 0.92)),
    "dice_mean": ("Dice, mean (lesion images)", (">=", 0.78)),
    "dice_median": ("Dice, median", None),
    "iou_mean": ("IoU, mean", None),
    "iou_median": ("IoU, median", None),
    "normal_nonempty_mask_rate": ("normal images with a non-empty mask", ("<=", 0.10)),
    "ece": ("expected calibration error", None),
}


def table(card: dict) -> str:
    """Test value, interval and target per metric; with a ``cross_validation`` section, also the
    out-of-fold figure (all development images, each predicted by models that never saw it)."""
    test = card["metrics"]["test"]
    cv = card.get("cross_validation", {}).get("figures")
    head = ["metric", "test value", "95% CI", *(["cross-validation"] if cv else []), "issue target"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, (label, target) in ROWS.items():
        m = test[key]
        ci = " \u2013 ".join(f"{v:.3f}" for v in m["ci95"]) if "ci95" in m else ""
        goal = ""
        if target:
            op, value = target
            met = m["value"] >= value if op == ">=" else m["value"] <= value
            sign = "\u2265" if op == ">=" else "\u2264"
            goal = f"{sign} {value:.2f} ({'met' if met else 'not met'})"
        shown = f"{m['value']:.3f}"
        if target and float(shown) == target[1] and m["value"] != target[1]:
            shown = f"{m['value']:.4f}"  # rounding must not hide which side of the target it is on
        cells = [label, shown, ci, *([f"{cv[key]:.3f}"] if cv else []), goal]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SITE_NAMES = {"busi": "BUSI (Egypt)", "breast_lesions_usg": "BrEaST-Lesions-USG (Poland)"}


def site_table(card: dict) -> str:
    """The test figures of each data set's images alone, with their intervals ("" where the
    subset has nothing to measure, e.g. no normal image)."""
    sites = card["metrics"]["test_by_dataset"]
    head = ["metric", *(f"{SITE_NAMES.get(k, k)}: {v['n_images']} images, {v['n_normal_images']} normal" for k, v in sites.items())]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, (label, _target) in ROWS.items():
        cells = [label]
        for site in sites.values():
            m = site["metrics"][key]
            if m["value"] is None:
                cells.append("")
                continue
            ci = f" ({m['ci95'][0]:.2f}\u2013{m['ci95'][1]:.2f})" if m.get("ci95") and None not in m["ci95"] else ""
            cells.append(f"{m['value']:.3f}{ci}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else "models/busnet/card.json") as f:
        card = json.load(f)
    print(table(card))
    if "test_by_dataset" in card["metrics"]:
        print()
        print(site_table(card))
