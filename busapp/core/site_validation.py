"""Site validation: how busapp does on a hospital's own labelled images, against its model card.

A labels CSV (header row; columns ``file`` relative to the image folder, ``label`` normal / benign
/ malignant, optionally ``mask``) -> every image through the one analysis path
(``core.analysis.Analyzer``) -> figures: sensitivity and specificity at the shipped rule, AUC benign
vs malignant with a bootstrap 95 % interval, ROC curve, reliability (calibration) bins, the 3-class
confusion matrix, Dice against the given masks, input-check rates, and a plain-language verdict
against the card's held-out-hospital figures. Too few images for a verdict is said with the numbers.

Images are read in place, never copied; the report names them by sha256 unless asked for names.
No Qt (``busapp-cli validate`` and the GUI's Tools > Validate both call ``run_validation``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("normal", "benign", "malignant")
HALF_WIDTH = 0.10  # the widest 95 % interval (+-) of sensitivity / specificity a verdict may rest on
BOOTSTRAP = 2000
Z95 = 1.959964


class LabelsError(ValueError):
    """The labels file cannot be used; the message names the file, the line and the reason."""


@dataclass(frozen=True)
class LabelRow:
    file: str
    label: str
    mask: str | None
    line: int


def read_labels(folder: Path, labels_csv: Path) -> list[LabelRow]:
    """Check and read the labels file; paths must stay inside ``folder``."""
    folder = Path(folder).resolve()
    try:
        with open(labels_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "file" not in cols or "label" not in cols:
                raise LabelsError(f"{Path(labels_csv).name}: the first row must be a header with columns 'file' and "
                                  f"'label' (and optionally 'mask'); found {cols or 'nothing'}.")
            reader.fieldnames = cols
            rows, seen = [], set()
            for i, r in enumerate(reader, start=2):
                file = (r.get("file") or "").strip()
                label = (r.get("label") or "").strip().lower()
                mask = (r.get("mask") or "").strip() or None
                if not file and not label:
                    continue
                if label not in CLASSES:
                    raise LabelsError(f"{Path(labels_csv).name}, line {i}: label {label!r} is not one of "
                                      "normal, benign, malignant.")
                for p in filter(None, (file, mask)):
                    q = (folder / p).resolve()
                    if Path(p).is_absolute() or not q.is_relative_to(folder):
                        raise LabelsError(f"{Path(labels_csv).name}, line {i}: {p!r} is not a path inside the "
                                          "image folder.")
                if file in seen:
                    raise LabelsError(f"{Path(labels_csv).name}, line {i}: {file!r} is listed twice.")
                seen.add(file)
                rows.append(LabelRow(file, label, mask, i))
    except OSError as e:
        raise LabelsError(f"{Path(labels_csv).name}: cannot be read ({e.strerror or type(e).__name__}).") from e
    except (UnicodeDecodeError, csv.Error) as e:
        raise LabelsError(f"{Path(labels_csv).name}: not a readable CSV file ({type(e).__name__}).") from e
    if not rows:
        raise LabelsError(f"{Path(labels_csv).name}: no labelled images.")
    return rows


@dataclass
class ImageOutcome:
    file: str
    label: str
    sha256: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    predicted: str = ""
    positive: bool | None = None  # the shipped rule calls it malignant
    band: str | None = None
    warnings: tuple[str, ...] = ()
    dice: float | None = None
    error: str | None = None

    @property
    def p_malignant(self) -> float:
        return self.probabilities.get("malignant", float("nan"))


# --- statistics --------------------------------------------------------------------------------------


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """Wilson score 95 % interval of k successes in n."""
    if n == 0:
        return None
    p = k / n
    d = 1 + Z95**2 / n
    c = (p + Z95**2 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def n_for_half_width(p: float, half_width: float = HALF_WIDTH) -> int:
    """The smallest n whose Wilson 95 % interval at proportion ``p`` is at most +-half_width wide."""
    p = min(max(p, 0.0), 1.0)
    for n in range(1, 100000):
        lo, hi = wilson(round(p * n), n)
        if (hi - lo) / 2 <= half_width:
            return n
    return 100000


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(score of a cancer > score of a benign lesion), ties counted half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def bootstrap_auc(pos: np.ndarray, neg: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float] | None:
    """Percentile 95 % interval, each class resampled on its own (stratified)."""
    if len(pos) < 2 or len(neg) < 2:
        return None
    rng = np.random.default_rng(seed)
    vals = [auc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) for _ in range(n)]
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return (float(lo), float(hi))


def roc_points(pos: np.ndarray, neg: np.ndarray) -> list[tuple[float, float]]:
    """(false-positive rate, sensitivity) at every threshold, from (0, 0) to (1, 1)."""
    scores = np.unique(np.concatenate([pos, neg]))[::-1]
    pts = [(0.0, 0.0)]
    for t in scores:
        pts.append((float((neg >= t).mean()), float((pos >= t).mean())))
    if pts[-1] != (1.0, 1.0):
        pts.append((1.0, 1.0))
    return pts


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[list[dict[str, float]], float | None]:
    """Equal-width bins of p(malignant): mean predicted, share malignant, count; and the ECE."""
    rows, ece = [], 0.0
    if not len(p):
        return rows, None
    idx = np.minimum((p * bins).astype(int), bins - 1)
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append({"from": b / bins, "to": (b + 1) / bins, "n": int(m.sum()),
                         "mean_predicted": float(p[m].mean()), "observed": float(y[m].mean())})
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return rows, float(ece)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


# --- the card's reference figures and the verdict ----------------------------------------------------


def _fig(f: Any) -> tuple[float | None, tuple[float, float] | None]:
    if f is None:
        return None, None
    v = getattr(f, "value", None) if not isinstance(f, Mapping) else f.get("value")
    ci = getattr(f, "ci95", None) if not isinstance(f, Mapping) else f.get("ci95")
    return (None if v is None else float(v)), (tuple(ci) if ci else None)


def card_reference(card: Any) -> dict[str, Any]:
    """What the site's figures are compared with: the worst held-out hospital of the card's decision
    rule (sensitivity, specificity) and its held-out AUC; for a card without a decision rule the
    in-site test figures, which say less (noted)."""
    from busapp.core.risk import parse_decision

    try:
        decision = parse_decision(card)
    except ValueError:
        decision = None
    ref: dict[str, Any] = {}
    if decision is not None and decision.per_site:
        worst = {}
        for key in ("sensitivity", "specificity"):
            site, op = min(decision.per_site.items(), key=lambda kv: getattr(kv[1], key).value or 1.0)
            v, ci = _fig(getattr(op, key))
            worst[key] = {"value": v, "ci95": ci, "site": site}
        ref.update(worst)
        ref["source"] = "the card's worst hospital the model had not seen (leave-one-site-out)"
    metrics = (card.get("metrics") if isinstance(card, Mapping) else None) or {}
    held = metrics.get("held_out_site") or {}
    aucs = [(s, _fig(m.get("auc_benign_vs_malignant"))) for s, m in held.items() if isinstance(m, Mapping)]
    aucs = [(s, f) for s, f in aucs if f[0] is not None]
    if aucs:
        s, (v, ci) = min(aucs, key=lambda x: x[1][0])
        ref["auc"] = {"value": v, "ci95": ci, "site": s}
    elif not ref:
        test = metrics.get("test") or {}
        for key, name in (("sensitivity", "sensitivity_malignant"), ("auc", "auc_benign_vs_malignant")):
            v, ci = _fig(test.get(name))
            if v is not None:
                ref[key] = {"value": v, "ci95": ci, "site": "in-site test split"}
        ref["source"] = ("the card's in-site test split (this model has no figures from hospitals it had not "
                         "seen, so agreement says little)")
    return ref


def verdict(fig: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """{"status": insufficient | below | consistent | no_reference, "text": one paragraph}."""
    n_m, n_b = fig["n_malignant"], fig["n_benign"]
    need_m = n_for_half_width((ref.get("sensitivity") or {}).get("value") or 0.9)
    need_b = n_for_half_width((ref.get("specificity") or {}).get("value") or 0.6)
    if n_m < need_m or n_b < need_b:
        return {"status": "insufficient", "needed": {"malignant": need_m, "benign": need_b},
                "text": (f"Not enough images for a verdict: {n_m} cancers and {n_b} benign lesions were labelled; "
                         f"at least {need_m} cancers and {need_b} benign lesions are needed for the 95 % intervals of "
                         f"sensitivity and specificity to be within ±{HALF_WIDTH:.2f}. The figures below are shown "
                         "but must not be relied on.")}
    if not ref:
        return {"status": "no_reference", "text": "The model card has no figures to compare with."}
    below, said = [], []
    for key, label in (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("auc", "AUC")):
        r, s = ref.get(key), fig.get(key) or {}
        if not r or r.get("value") is None or s.get("value") is None:
            continue
        bound = r["ci95"][0] if r.get("ci95") else r["value"]
        said.append(f"{label} {s['value']:.2f} here against {r['value']:.2f} ({r['site']})")
        if s["value"] < bound:
            below.append(label)
    if not said:
        return {"status": "no_reference", "text": "The model card has no comparable figures."}
    if below:
        return {"status": "below", "below": below,
                "text": (f"Below the validated figures ({', '.join(below)}): do not rely on busapp at this site "
                         f"without review. " + "; ".join(said) + ".")}
    return {"status": "consistent",
            "text": ("Consistent with the validated figures at this site: " + "; ".join(said) +
                     f". Compared with {ref.get('source', 'the model card')}.")}


# --- running it ------------------------------------------------------------------------------------


def _rule(card: Any) -> tuple[str, float | None]:
    from busapp.core.risk import parse_decision

    try:
        d = parse_decision(card)
    except ValueError:
        d = None
    if d is None:
        return "top class malignant (the model card has no validated threshold)", None
    return f"p(malignant) >= {d.suspicious_threshold:.2f} (the model card's suspicious-for-malignancy threshold)", \
        d.suspicious_threshold


def analyse(folder: Path, rows: list[LabelRow], analyzer: Any, *,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> list[ImageOutcome]:
    """Every labelled image through ``analyzer`` (a ``core.analysis.Analyzer``); one bad file is an
    outcome with an error, never the end of the run."""
    from PIL import Image

    from busapp.core.analysis import describe_failure
    from busapp.core.imageio import ImageLoadError, load_image

    folder = Path(folder)
    out = []
    for i, row in enumerate(rows):
        if cancelled is not None and cancelled():
            break
        o = ImageOutcome(row.file, row.label)
        try:
            loaded = load_image(folder / row.file)
            r = analyzer.analyze(loaded, 0, source="validate")
            o.sha256 = r.image_sha256
            o.probabilities = dict(r.prediction.probabilities)
            o.predicted = r.prediction.label
            risk = r.risk
            o.band = getattr(risk, "band", None)
            o.positive = bool(risk.suspicious) if getattr(risk, "suspicious", None) is not None \
                else o.predicted == "malignant"
            o.warnings = tuple(w.code for w in r.input_warnings)
            if row.mask:
                with Image.open(folder / row.mask) as im:
                    truth = np.asarray(im.convert("L")) > 127
                if truth.shape != r.prediction.mask.shape:
                    o.error = f"{row.mask}: the mask is {truth.shape[1]}x{truth.shape[0]}, the image " \
                              f"{r.prediction.mask.shape[1]}x{r.prediction.mask.shape[0]}; Dice left out."
                else:
                    o.dice = dice(r.prediction.mask, truth)
        except ImageLoadError as e:
            o.error = str(e)
        except OSError as e:
            o.error = describe_failure(Path(row.mask or row.file).name, e)
        except Exception as e:  # one bad file must not stop the others
            o.error = describe_failure(Path(row.file).name, e)
        out.append(o)
        if progress is not None:
            progress(i + 1, len(rows))
    return out


def figures(outcomes: list[ImageOutcome], card: Any) -> dict[str, Any]:
    rule, threshold = _rule(card)
    ok = [o for o in outcomes if o.probabilities]
    mal = [o for o in ok if o.label == "malignant"]
    ben = [o for o in ok if o.label == "benign"]
    nor = [o for o in ok if o.label == "normal"]
    tp = sum(1 for o in mal if o.positive)
    tn = sum(1 for o in ben if not o.positive)
    tn_all = tn + sum(1 for o in nor if not o.positive)

    def prop(k: int, n: int) -> dict[str, Any]:
        return {"value": (k / n) if n else None, "ci95": wilson(k, n), "k": k, "n": n, "interval": "Wilson"}

    pos = np.array([o.p_malignant for o in mal])
    neg = np.array([o.p_malignant for o in ben])
    a = auc(pos, neg)
    lesion = mal + ben
    rel, ece = reliability(np.array([o.p_malignant for o in lesion]),
                           np.array([o.label == "malignant" for o in lesion], float))
    confusion = {t: {p: sum(1 for o in ok if o.label == t and o.predicted == p) for p in CLASSES} for t in CLASSES}
    dices = [o.dice for o in outcomes if o.dice is not None and o.label != "normal"]
    codes = sorted({c for o in ok for c in o.warnings})
    fig = {
        "rule": rule,
        "threshold": threshold,
        "n_images": len(outcomes), "n_analysed": len(ok), "n_failed": len(outcomes) - len(ok),
        "n_malignant": len(mal), "n_benign": len(ben), "n_normal": len(nor),
        "sensitivity": prop(tp, len(mal)),
        "specificity": prop(tn, len(ben)),
        "specificity_with_normal": prop(tn_all, len(ben) + len(nor)),
        "auc": {"value": a, "ci95": bootstrap_auc(pos, neg), "interval": f"bootstrap, {BOOTSTRAP} stratified resamples",
                "what": "benign vs malignant, p(malignant)"},
        "roc": roc_points(pos, neg) if len(pos) and len(neg) else [],
        "reliability": rel, "ece": ece,
        "confusion": confusion,
        "dice": {"mean": float(np.mean(dices)) if dices else None, "n": len(dices)},
        "input_check": {"any": (sum(1 for o in ok if o.warnings) / len(ok)) if ok else None,
                        **{c: sum(1 for o in ok if c in o.warnings) / len(ok) for c in codes}},
        "missed_cancers_flagged_by_input_check": sum(1 for o in mal if not o.positive and o.warnings),
        "missed_cancers": len(mal) - tp,
    }
    ref = card_reference(card)
    fig["reference"] = ref
    fig["verdict"] = verdict(fig, ref)
    return fig


@dataclass
class ValidationRun:
    outcomes: list[ImageOutcome]
    figures: dict[str, Any]
    model: dict[str, str]
    labels_sha256: str


def run_validation(folder: Path, labels_csv: Path, analyzer: Any, *,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> ValidationRun:
    from busapp.core.hashing import sha256_file

    rows = read_labels(folder, labels_csv)
    outcomes = analyse(folder, rows, analyzer, progress=progress, cancelled=cancelled)
    card = analyzer.bundle.card
    model = {"name": analyzer.bundle.name, "version": analyzer.bundle.version,
             "sha256": str(analyzer.model.sha256)}
    return ValidationRun(outcomes, figures(outcomes, card), model, sha256_file(Path(labels_csv)))


# --- outputs -----------------------------------------------------------------------------------------

CSV_COLUMNS = ("sha256", "label", "predicted", "p_normal", "p_benign", "p_malignant", "rule_positive", "band",
               "input_warnings", "dice", "error")


def outcome_rows(run: ValidationRun, names: bool = False) -> list[dict[str, str]]:
    rows = []
    for o in run.outcomes:
        r = {"sha256": o.sha256, "label": o.label, "predicted": o.predicted,
             **{f"p_{c}": (f"{o.probabilities[c]:.4f}" if c in o.probabilities else "") for c in CLASSES},
             "rule_positive": "" if o.positive is None else ("yes" if o.positive else "no"),
             "band": o.band or "", "input_warnings": ";".join(o.warnings),
             "dice": "" if o.dice is None else f"{o.dice:.4f}",
             "error": "" if o.error is None else (o.error if names else _anonymous(o.error, o))}
        rows.append({"file": o.file, **r} if names else r)
    return rows


def _anonymous(message: str, o: ImageOutcome) -> str:
    """An error message without the file's name (the report names files by sha256 only)."""
    for part in sorted({o.file, Path(o.file).name}, key=len, reverse=True):
        message = message.replace(part, "<image>")
    return message


def report_json(run: ValidationRun, names: bool = False) -> dict[str, Any]:
    from busapp import __version__

    fig = dict(run.figures)
    fig["roc"] = [[round(x, 4), round(y, 4)] for x, y in fig["roc"]]
    return {"busapp_version": __version__, "model": run.model, "labels_sha256": run.labels_sha256,
            "names_included": names, **fig}


def write_outputs(run: ValidationRun, out_dir: Path, names: bool = False) -> dict[str, Path]:
    """validation.json, validation.csv and validation.pdf in ``out_dir``, each written atomically; a
    name already taken gets ``-2``, ``-3``...: an earlier report is never replaced."""
    import io
    import json

    from busapp.core.atomic import write_bytes_atomic
    from busapp.report.validation_pdf import validation_pdf_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, n = "validation", 1
    while any((out_dir / f"{stem}.{ext}").exists() for ext in ("json", "csv", "pdf")):
        n += 1
        stem = f"validation-{n}"
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("json", "csv", "pdf")}
    data = report_json(run, names)
    write_bytes_atomic(paths["json"], (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    buf = io.StringIO()
    rows = outcome_rows(run, names)
    w = csv.DictWriter(buf, fieldnames=(["file"] if names else []) + list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_bytes_atomic(paths["csv"], buf.getvalue().encode("utf-8"))
    write_bytes_atomic(paths["pdf"], validation_pdf_bytes(data))
    return paths
