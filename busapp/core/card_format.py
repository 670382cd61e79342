"""The model card's figures in words and tables: one place for About, the PDF report and the
README's model table (``scripts/card_table.py``), so the three cannot disagree.

Every function takes a ``ModelCard`` or a plain card mapping (possibly partial: a report of a
test card); what the card lacks is left out, never invented. Qt-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from busapp.core.model_card import (
    CardError,
    CardMetrics,
    Decision,
    Figure,
    ModelCard,
    as_card_metrics,
    parse_decision,
    parse_figure,
)

Card = ModelCard | Mapping[str, Any]

# metric key -> label, in display order (About, report, README).
METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy (3 classes)",
    "macro_f1": "Macro F1",
    "sensitivity_normal": "Sensitivity, normal",
    "sensitivity_benign": "Sensitivity, benign",
    "sensitivity_malignant": "Sensitivity, malignant",
    "auc_benign_vs_malignant": "AUC benign vs malignant",
    "dice_mean": "Outline overlap (Dice), mean",
    "dice_median": "Outline overlap (Dice), median",
    "iou_mean": "Outline IoU, mean",
    "iou_median": "Outline IoU, median",
    "normal_nonempty_mask_rate": "Normal images outlined",
    "ece": "Calibration error (ECE)",
}
# The shorter lists the About box and the report show (the README shows every metric).
ABOUT_METRICS = ("accuracy", "macro_f1", "sensitivity_normal", "sensitivity_benign", "sensitivity_malignant",
                 "auc_benign_vs_malignant", "dice_median", "dice_mean", "ece")
REPORT_METRICS = ("accuracy", "macro_f1", "sensitivity_normal", "sensitivity_benign", "sensitivity_malignant",
                  "auc_benign_vs_malignant", "dice_mean")
SITE_METRICS = ("accuracy", "auc_benign_vs_malignant", "dice_mean", "ece")

SITE_LABELS = {"busi": "BUSI (Egypt)", "breast_lesions_usg": "BrEaST-Lesions-USG (Poland)",
               "bus_uclm": "BUS-UCLM (Spain)"}
SITE_SHORT = {"busi": "BUSI (Egypt)", "breast_lesions_usg": "BrEaST (Poland)", "bus_uclm": "BUS-UCLM (Spain)"}


def site_label(site: str, short: bool = False) -> str:
    return (SITE_SHORT if short else SITE_LABELS).get(site, site)


def value_text(value: float | None, places: int = 2) -> str:
    """``places`` decimals, one more where rounding would turn a value below 1 into a perfect 1;
    "" for a figure the data cannot give (None)."""
    if value is None:
        return ""
    if value < 1 and round(value, places) >= 1:
        return f"{value:.{places + 1}f}"
    return f"{value:.{places}f}"


def ci_text(figure: Figure | None, places: int = 2, sep: str = "\u2013") -> str:
    """``lo-hi`` (en dash) of the 95% interval, "" without one."""
    if figure is None or figure.ci95 is None:
        return ""
    lo, hi = figure.ci95
    return f"{lo:.{places}f}{sep}{hi:.{places}f}"


def figure_text(figure: Figure | None, places: int = 2, ci_places: int | None = None) -> str:
    """Value with its interval in brackets: ``0.87 (0.79-0.94)`` (en dash)."""
    if figure is None or figure.value is None:
        return ""
    ci = ci_text(figure, places if ci_places is None else ci_places)
    return value_text(figure.value, places) + (f" ({ci})" if ci else "")


@dataclass(frozen=True)
class FigureRow:
    key: str
    label: str
    test: Figure
    cross_validation: float | None  # out-of-fold point value, where the card has it


def test_rows(card: Card | None, keys: tuple[str, ...] = ABOUT_METRICS) -> list[FigureRow]:
    """The pooled test figures, in display order, with the cross-validation figure beside."""
    m = as_card_metrics(card)
    return [FigureRow(k, METRIC_LABELS.get(k, k), m.test[k], m.cross_validation.get(k))
            for k in keys if k in m.test and m.test[k].value is not None]


@dataclass(frozen=True)
class Column:
    """One column of a per-site table: a heading and each metric's figure."""

    key: str
    heading: str
    n_images: int | None
    figures: Mapping[str, Figure]


def site_columns(card: Card | None, group: str = "test_by_dataset", short: bool = False) -> list[Column]:
    """One column per site of ``group`` ("test_by_dataset" or "held_out_site")."""
    m = as_card_metrics(card)
    sites = m.test_by_dataset if group == "test_by_dataset" else m.held_out_site
    return [Column(site, site_label(site, short), part.n_images, part.metrics) for site, part in sites.items()]


def report_metric_rows(card: Card | None) -> list[tuple[str, str]]:
    """(label, text) for the PDF: ``0.88  (95% CI 0.80-0.94; cross-validation 0.78)``."""
    rows = []
    for r in test_rows(card, REPORT_METRICS):
        extra = [f"95% CI {ci_text(r.test, sep='-')}"] if r.test.ci95 else []
        extra += [f"cross-validation {r.cross_validation:.2f}"] if r.cross_validation is not None else []
        rows.append((_report_label(r.key), f"{r.test.value:.2f}" + (f"  ({'; '.join(extra)})" if extra else "")))
    return rows


def _report_label(key: str) -> str:
    return {"accuracy": "Accuracy", "dice_mean": "Lesion outline Dice (mean)"}.get(key, METRIC_LABELS.get(key, key))


def decision_of(card: Card | None) -> Decision | None:
    if isinstance(card, ModelCard):
        return card.decision
    if isinstance(card, Mapping) and card.get("decision") is not None:
        try:
            return parse_decision(card["decision"], tuple(card.get("classes") or ("normal", "benign", "malignant")))
        except CardError:
            return None
    return None


def decision_lines(card: Card | None) -> list[str]:
    """The shipped threshold in words, then its sensitivity and specificity on each held-out site."""
    d = decision_of(card)
    if d is None:
        return []
    out = [f"Suspicious for malignancy from p(malignant) {d.suspicious_threshold:.2f}"
           + (f" (chosen on {d.chosen_on.rstrip('.')})" if d.chosen_on else "") + "."]
    for site, op in d.per_site.items():
        n = f" ({op.n_malignant} cancers, {op.n_benign} benign)" if op.n_malignant is not None else ""
        out.append(f"{site_label(site)}{n}: sensitivity {figure_text(op.sensitivity)}, "
                   f"specificity {figure_text(op.specificity)}")
    return out


# --- Markdown (README) ---------------------------------------------------------------------------


def markdown_table(card: Card) -> str:
    """The README's model table: every metric; the pooled test split with its interval, each
    site's test images, each held-out site (busnet 2 on), and cross-validation where the card has
    them; with a ``decision`` block, the threshold's sensitivity and specificity as two more rows."""
    m: CardMetrics = as_card_metrics(card)
    n_test = f" ({m.n_test_images} images)" if m.n_test_images else ""
    # (heading, figure text per metric, held-out site whose threshold figures go in this column)
    columns: list[tuple[str, Callable[[str], str], str | None]] = [
        (f"test, all sites{n_test}", lambda k: figure_text(m.test.get(k), 3, 2), None)]
    for c in site_columns(card):
        columns.append((f"test: {c.heading}" + (f" ({c.n_images})" if c.n_images else ""),
                        lambda k, c=c: figure_text(c.figures.get(k), 3, 2), None))
    for c in site_columns(card, "held_out_site"):
        columns.append((f"held-out site: {c.heading}" + (f" ({c.n_images})" if c.n_images else ""),
                        lambda k, c=c: figure_text(c.figures.get(k), 3, 2), c.key))
    if m.cross_validation:
        n_cv = f" ({m.cross_validation_images} images)" if m.cross_validation_images else ""
        columns.append((f"cross-validation{n_cv}", lambda k: value_text(m.cross_validation.get(k), 3), None))
    keys = [k for k in METRIC_LABELS if k in m.test] + [k for k in m.test if k not in METRIC_LABELS]
    lines = ["| metric | " + " | ".join(h for h, _, _ in columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    lines += [f"| {METRIC_LABELS.get(k, k)} | " + " | ".join(f(k) for _, f, _ in columns) + " |" for k in keys]
    d = decision_of(card)
    if d is not None:
        for what in ("sensitivity", "specificity"):
            cells = [figure_text(getattr(d.per_site[site], what), 3, 2) if site in d.per_site else ""
                     for _, _, site in columns]
            lines.append(f"| {what.capitalize()} at p(malignant) \u2265 {d.suspicious_threshold:.2f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def limitations(card: Card) -> tuple[str, ...]:
    if isinstance(card, ModelCard):
        return card.limitations
    return tuple(str(x) for x in (card.get("limitations") or ()))


def training_data_lines(card: Card) -> tuple[str, ...]:
    """The card's training data sets in words: "BUSI, Baheya Hospital, Cairo (...): 662 images;
    licence: ...". Entries are sentences (older cards) or mappings with what/images/licence."""
    training = card.get("training") or {}
    out = []
    for d in (training.get("data") or ()) if isinstance(training, Mapping) else ():
        if not isinstance(d, Mapping):
            out.append(str(d))
            continue
        what = str(d.get("what") or site_label(str(d.get("site", "?"))))
        parts = [f"{what}: {d['images']} images" if d.get("images") is not None else what]
        if d.get("licence"):
            parts.append(f"licence: {d['licence']}")
        out.append("; ".join(parts))
    return tuple(out)


def figure(card: Card, group: str, metric: str, site: str | None = None) -> Figure | None:
    """One figure by name (``group`` "test", "test_by_dataset" or "held_out_site")."""
    m = as_card_metrics(card)
    if group == "test":
        return m.test.get(metric)
    sites = m.test_by_dataset if group == "test_by_dataset" else m.held_out_site
    part = sites.get(site or "")
    return part.metrics.get(metric) if part else None


__all__ = ["ABOUT_METRICS", "METRIC_LABELS", "REPORT_METRICS", "SITE_LABELS", "SITE_METRICS", "Column", "FigureRow",
           "ci_text", "decision_lines", "decision_of", "figure", "figure_text", "limitations", "markdown_table",
           "parse_figure", "report_metric_rows", "site_columns", "site_label", "test_rows", "training_data_lines", "value_text"]
