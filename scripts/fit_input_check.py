"""Fit and measure the input check (busapp/core/input_check.py) on the three training sites.

    python scripts/fit_input_check.py extract   # statistics + shipped-model outputs per image (slow, cached)
    python scripts/fit_input_check.py restat    # statistics again after a change of FEATURES (no model)
    python scripts/fit_input_check.py fit       # thresholds -> busapp/core/input_check_params.json (for cards
                                                # without an "input_check" block: 1.5.0's two sites) and
                                                # build/input_check/card_block_input_check.json (all three)

``extract`` runs the shipped model once per image and once per generated lesion crop and caches
everything in build/input_check/cache.npz; ``fit`` is pure numpy on that cache plus a set of
non-ultrasound images (scikit-image's sample data, synthetic frames) built in memory.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from busapp.core import input_check as ic
from busapp.training.data import SITES, default_data_root, read_split

OUT = Path(__file__).resolve().parents[1] / "build" / "input_check"
CACHE = OUT / "cache.npz"


def _rows(root: Path) -> list[dict[str, str]]:
    split = read_split()
    out = []
    for site in SITES:
        with open(root / site / "manifest.csv", newline="") as f:
            for r in csv.DictReader(f):
                r["site"] = site
                r["split"] = split.get(f"{site}/{r['id']}", "none")
                out.append(r)
    return out


def _mask(root: Path, site: str, masks: str, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    for p in filter(None, masks.split(";")):
        with Image.open(root / site / p) as im:
            m |= np.asarray(im.convert("L")) > 127
    return m


def crop_around(img: np.ndarray, mask: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int((y1 - y0) * margin), int((x1 - x0) * margin)
    y0, y1 = max(0, y0 - my), min(img.shape[0], y1 + my)
    x0, x1 = max(0, x0 - mx), min(img.shape[1], x1 + mx)
    return img[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def extract() -> None:
    from busapp.core.predictor import Predictor

    root = default_data_root()
    pred = Predictor(num_threads=1)
    rng = np.random.default_rng(0)
    recs: dict[str, list] = {k: [] for k in ("key", "site", "label", "split", "doppler", "kind", "probs",
                                             "stats", "colour", "box_pred", "box_true")}
    rows = _rows(root)
    t0 = time.time()
    for i, r in enumerate(rows):
        with Image.open(root / r["site"] / r["image"]) as im:
            img = np.asarray(im.convert("L"))
        true = _mask(root, r["site"], r["masks"], img.shape)
        variants = [("full", img, true)]
        if true.any() and i % 2 == 0:  # every second lesion image also as a tight crop
            c, cm = crop_around(img, true, float(rng.uniform(0.05, 0.4)))
            variants.append(("crop", c, cm))
        for kind, a, m in variants:
            p = pred.predict(a)
            recs["key"].append(f"{r['site']}/{r['id']}")
            recs["site"].append(r["site"])
            recs["label"].append(r["label"])
            recs["split"].append(r["split"])
            recs["doppler"].append(r.get("doppler", "") == "yes")
            recs["kind"].append(kind)
            recs["probs"].append([p.probabilities[c] for c in ("normal", "benign", "malignant")])
            recs["stats"].append(ic.stats_vector(ic.image_stats(a)))
            recs["colour"].append(ic.colour_fraction(a))
            recs["box_pred"].append(ic.lesion_box_fraction(p.mask))
            recs["box_true"].append(ic.lesion_box_fraction(m))
        if i % 100 == 0:
            print(f"{i}/{len(rows)} {time.time() - t0:.0f}s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, **{k: np.asarray(v) for k, v in recs.items()})
    print("wrote", CACHE)




def restat() -> None:
    """Recompute the image statistics in the cache (same images, same crops), keeping the model's
    outputs: for a change of ``input_check.FEATURES`` without running the model again."""
    root = default_data_root()
    c = dict(np.load(CACHE))
    rng = np.random.default_rng(0)
    stats, colour = [], []
    for i, r in enumerate(_rows(root)):
        with Image.open(root / r["site"] / r["image"]) as im:
            img = np.asarray(im.convert("L"))
        true = _mask(root, r["site"], r["masks"], img.shape)
        variants = [img]
        if true.any() and i % 2 == 0:
            variants.append(crop_around(img, true, float(rng.uniform(0.05, 0.4)))[0])
        for a in variants:
            stats.append(ic.stats_vector(ic.image_stats(a)))
            colour.append(ic.colour_fraction(a))
    assert len(stats) == len(c["key"]), "the cache holds other images: run extract"
    c["stats"], c["colour"] = np.asarray(stats), np.asarray(colour)
    np.savez(CACHE, **c)
    print("restat", len(stats))


# --- the non-ultrasound set and synthetic colour overlays -------------------------------------------


@functools.lru_cache(maxsize=1)
def non_ultrasound_images() -> dict[str, np.ndarray]:
    """Photos, documents, textures and synthetic frames: every one must be flagged."""
    import skimage.data as sk

    out: dict[str, np.ndarray] = {}
    for name in ("astronaut", "camera", "coffee", "chelsea", "text", "moon", "page", "horse", "rocket", "coins",
                 "clock", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
                 "checkerboard", "logo", "microaneurysms", "binary_blobs", "cat", "colorwheel",
                 "shepp_logan_phantom", "cell"):
        try:
            a = getattr(sk, name)()
        except Exception as e:
            print(f"skimage {name}: not available ({type(e).__name__})")
            continue
        out[f"skimage:{name}"] = a
    rng = np.random.default_rng(1)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    out["synthetic:black"] = np.zeros((h, w), np.uint8)
    out["synthetic:white"] = np.full((h, w), 255, np.uint8)
    out["synthetic:grey"] = np.full((h, w), 128, np.uint8)
    out["synthetic:uniform noise"] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    out["synthetic:gaussian noise"] = np.clip(rng.normal(100, 40, (h, w)), 0, 255).astype(np.uint8)
    out["synthetic:horizontal gradient"] = (xx * 255 // (w - 1)).astype(np.uint8)
    out["synthetic:vertical gradient"] = (yy * 255 // (h - 1)).astype(np.uint8)
    out["synthetic:radial gradient"] = np.clip(255 - np.hypot(yy - h / 2, xx - w / 2), 0, 255).astype(np.uint8)
    out["synthetic:colour gradient"] = np.stack([xx * 255 // w, yy * 255 // h, 255 - xx * 255 // w], -1).astype(np.uint8)
    out.update(qt_screenshots())
    return out


def qt_screenshots() -> dict[str, np.ndarray]:
    """Screenshots of Qt windows (the app's own about dialog and a plain form), rendered offscreen."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication, QFormLayout, QLineEdit, QPushButton, QTextEdit, QVBoxLayout, QWidget

    app = QApplication.instance() or QApplication([])
    out = {}
    w = QWidget()
    lay = QVBoxLayout(w)
    form = QFormLayout()
    for k in ("Name", "Date", "Study"):
        form.addRow(k, QLineEdit(f"{k} value"))
    lay.addLayout(form)
    t = QTextEdit()
    t.setPlainText("Findings\n" + "lorem ipsum dolor sit amet " * 40)
    lay.addWidget(t)
    lay.addWidget(QPushButton("OK"))
    w.resize(640, 480)
    out["screenshot:qt form"] = _grab(w)
    from busapp.gui.main_window import MainWindow

    mw = MainWindow()
    mw.resize(1100, 720)
    out["screenshot:busapp window"] = _grab(mw)
    mw.close()
    app.processEvents()
    return out


def _grab(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(__import__("PySide6.QtGui", fromlist=["QImage"]).QImage.Format.Format_RGB888)
    a = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return a[:, : img.width() * 3].reshape(img.height(), img.width(), 3).copy()


def tinted_jpeg(grey: np.ndarray, quality: int = 75) -> np.ndarray:
    """A grey frame as a scanner exports it: a blue-grey tint on every pixel, then JPEG (chroma noise)."""
    import io

    g = grey.astype(np.float64)
    rgb = np.clip(np.stack([g * 0.92, g * 0.97, g * 1.06 + 4], -1), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def doppler_overlay(grey: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    """Colour-flow blobs (red and blue, saturated) covering about ``area`` of the frame."""
    h, w = grey.shape
    rgb = np.stack([grey] * 3, -1).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    covered = np.zeros((h, w), bool)
    while covered.mean() < area:
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        r = rng.uniform(0.02, 0.06) * min(h, w)
        blob = (yy - cy) ** 2 / (r * rng.uniform(0.5, 2)) ** 2 + (xx - cx) ** 2 / r**2 < 1
        colour = (230, 40, 30) if rng.random() < 0.5 else (40, 90, 235)
        rgb[blob & ~covered] = colour
        covered |= blob
    return rgb


@functools.lru_cache(maxsize=1)
def colour_samples() -> tuple[list[float], dict[float, list[float]]]:
    """Colour shares of grey test frames exported with a tint (JPEG) and with synthetic Doppler."""
    rng = np.random.default_rng(2)
    root = default_data_root()
    sample = [r for r in _rows(root) if r["split"] == "test"][::6]
    tint, dop = [], {0.005: [], 0.01: [], 0.03: [], 0.1: [], 0.2: []}
    for r in sample:
        with Image.open(root / r["site"] / r["image"]) as im:
            g = np.asarray(im.convert("L"))
        tint.append(ic.colour_fraction(tinted_jpeg(g)))
        for area in dop:
            dop[area].append(ic.colour_fraction(doppler_overlay(g, area, rng)))
    return tint, dop


# --- fitting ---------------------------------------------------------------------------------------


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = np.argsort(np.argsort(allv, kind="mergesort"), kind="mergesort") + 1.0
    for v in np.unique(allv):  # average ranks of ties
        m = allv == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


NAMES = {"busi": "BUSI", "breast_lesions_usg": "BrEaST-Lesions-USG", "bus_uclm": "BUS-UCLM"}


def fit(sites: tuple[str, ...] = SITES, out_path: Path | None = None) -> None:
    """Fit the shipped parameters on the train split of ``sites`` (the model's own training sites)
    and write them to ``out_path`` (default: the fallback file beside input_check.py)."""
    from busapp.core.input_check import FEATURES, fit_distribution, mahalanobis

    c = dict(np.load(CACHE))
    site, split, kind, label = c["site"], c["split"], c["kind"], c["label"]
    X, probs = c["stats"], c["probs"]
    full = kind == "full"
    pred = np.array(["normal", "benign", "malignant"])[probs.argmax(1)]
    correct = pred == label
    report: dict = {"features": list(FEATURES)}

    # 1. distance, leave one site out: fit on the train split of two sites, score their test split
    #    (in-site) against every full frame of the third.
    loso = {}
    for held in SITES:
        fit_rows = full & (site != held) & (split == "train")
        m, ic_ = fit_distribution(X[fit_rows])
        d = mahalanobis(X, m, ic_)
        ins = full & (site != held) & (split == "test")
        out = full & (site == held)
        ref = full & (site != held) & (split == "val")
        t = float(np.quantile(d[ref], 0.98))
        loso[held] = {
            "auc_held_out_vs_in_site": round(auc(d[out], d[ins]), 3),
            "threshold_98pct_in_site_val": round(t, 2),
            "flagged_in_site_test": round(float((d[ins] >= t).mean()), 3),
            "flagged_held_out": round(float((d[out] >= t).mean()), 3),
            "n_in_site_test": int(ins.sum()), "n_held_out": int(out.sum()),
            "median_in_site": round(float(np.median(d[ins])), 2), "median_held_out": round(float(np.median(d[out])), 2),
        }
        if held == "bus_uclm":  # this fold is the shipped 1.5.0's own training data (BUSI + BrEaST)
            dop = c["doppler"] & out
            loso[held]["flagged_doppler"] = f"{int((d[dop] >= t).sum())} of {int(dop.sum())}"
            unseen = full & ((site == held) | (split == "test"))
            q = np.quantile(d[unseen], [0, 0.25, 0.5, 0.75, 0.9, 1.0])
            rows = []
            for lo, hi in itertools.pairwise(q):
                sel = unseen & (d >= lo) & (d <= hi)
                rows.append({"distance": [round(float(lo), 2), round(float(hi), 2)], "n": int(sel.sum()),
                             "accuracy_1_5_0": round(float(correct[sel].mean()), 3)})
            loso[held]["accuracy_by_distance_shipped_model"] = rows
            flagged = unseen & (d >= t)
            loso[held]["accuracy_flagged_vs_not"] = [round(float(correct[flagged].mean()), 3) if flagged.any() else None,
                                                     round(float(correct[unseen & ~flagged].mean()), 3)]
            missed = out & (label == "malignant") & (pred != "malignant")
            loso[held]["missed_cancers_flagged"] = f"{int((d[missed] >= t).sum())} of {int(missed.sum())}"
            loso[held]["_d_unseen"] = d  # kept for the crop and rule checks below
    report["distance_leave_one_site_out"] = {k: {kk: vv for kk, vv in v.items() if kk != "_d_unseen"}
                                             for k, v in loso.items()}

    # 2. the shipped parameters: fitted on the train split of all three sites (busnet 2's data).
    in_model = np.isin(site, sites)
    fit_rows = full & (split == "train") & in_model
    mean, inv = fit_distribution(X[fit_rows])
    d_all = mahalanobis(X, mean, inv)
    val = full & (split == "val") & in_model
    unlike = float(np.quantile(d_all[val], 0.98))

    # "is it ultrasound at all": the distance from every site's train split, whatever the model saw
    us_mean, us_inv = fit_distribution(X[full & (split == "train")])
    d_us = mahalanobis(X, us_mean, us_inv)
    print("fit", sites, "distance done", flush=True)
    nonus = non_ultrasound_images()
    print("non-ultrasound set", len(nonus), flush=True)
    nonus_d, nonus_us, nonus_colour = {}, {}, {}
    for name, a in nonus.items():
        v = ic.stats_vector(ic.image_stats(a))
        nonus_d[name] = float(mahalanobis(v, mean, inv)[0])
        nonus_us[name] = float(mahalanobis(v, us_mean, us_inv)[0])
        nonus_colour[name] = ic.colour_fraction(a)
    us_max = float(d_us[full].max())
    grey_nonus = [v for k, v in nonus_us.items() if nonus_colour[k] < 0.25 and ic.image_stats(nonus[k])["std"] * 255 >= 2]
    # between the farthest real ultrasound frame (any site, any split) and the nearest grey non-ultrasound image
    not_us = float(np.sqrt(us_max * min(grey_nonus))) if min(grey_nonus) > us_max else float(us_max * 1.05)

    # 3. colour: grey frames as a scanner exports them (tint + JPEG) against synthetic Doppler overlays
    tint, dop = colour_samples()
    colour_t = max(0.002, 2 * max(tint))
    sorted(v for k, v in nonus_colour.items() if v >= 0.05)
    photo_t = 0.3

    # 4. lesion crop: box fraction of the predicted outline and the dark border, full frames vs crops
    crop, _fullf = kind == "crop", full & (c["box_true"] > 0)
    best = None
    for bt in np.arange(0.2, 0.95, 0.05):
        for dt in (0.02, 0.05, 0.1, 0.2, 0.3, 1.01):
            flag = (c["box_pred"] >= bt) & (X[:, FEATURES.index("border_dark")] < dt)
            fp = float(flag[full].mean())
            tp = float(flag[crop].mean())
            if fp <= 0.02 and (best is None or tp > best[2]):
                best = (float(bt), float(dt), tp, fp)
    crop_box, crop_dark, crop_tp, crop_fp = best

    params = {
        "version": 1,
        "fitted_on": f"train split of {', '.join(NAMES[x] for x in sites)} (busapp/training/split.csv), full frames: "
                     "the model's own training sites",
        "distance": {"features": list(FEATURES), "mean": mean.round(8).tolist(), "inv_cov": inv.round(6).tolist(),
                     "shrinkage": 0.05},
        "ultrasound": {"features": list(FEATURES), "mean": us_mean.round(8).tolist(),
                       "inv_cov": us_inv.round(6).tolist(), "shrinkage": 0.05,
                       "fitted_on": "train split of all three sites, full frames"},
        "thresholds": {
            "blank_std_below": 2.0,
            "colour_at_least": round(colour_t, 4),
            "photo_colour_at_least": photo_t,
            "not_ultrasound_distance": round(not_us, 2),
            "unlike_distance": round(unlike, 2),
            "crop_box_at_least": round(crop_box, 2),
            "crop_border_dark_below": round(crop_dark, 2),
        },
        "chosen_on": {
            "unlike_distance": "98th percentile of the distance of the validation split's full frames (2 % false alarms in-site)",
            "not_ultrasound_distance": "geometric mean of the farthest real ultrasound frame (all sites, all splits) and the nearest grey non-ultrasound image",
            "colour_at_least": "twice the largest colour share of grey test frames exported with a scanner tint as JPEG",
            "photo_colour_at_least": "above synthetic Doppler overlays up to 20 % of the frame, below colour photographs",
            "crop_box_at_least": "most crops flagged with at most 2 % of full frames flagged (shipped model's outlines)",
            "blank_std_below": "a grey-level spread under 2 of 255: nothing to read",
        },
    }
    # measured with the shipped parameters
    th = params["thresholds"]
    all_scores = [ic.CheckScores(c["colour"][i], X[i, 1], d_all[i], c["box_pred"][i], X[i, FEATURES.index("border_dark")],
                                 d_us[i])
                  for i in range(len(site))]
    warns = [ic.warnings_from_scores(s, params) for s in all_scores]
    codes = [ws[0].code if ws else "" for ws in warns]
    report["shipped_thresholds"] = th
    report["warning_rates_full_frames"] = {
        s_: {sp: {code or "none": int(sum(1 for i in np.nonzero(full & (site == s_) & (split == sp))[0] if codes[i] == code))
                  for code in sorted(set(codes))} for sp in ("train", "val", "test")} for s_ in SITES}
    report["crops"] = {"n": int(crop.sum()), "flagged_lesion_crop": round(crop_tp, 3),
                       "any_warning": round(float(np.mean([bool(warns[i]) for i in np.nonzero(crop)[0]])), 3),
                       "full_frames_flagged_lesion_crop": round(crop_fp, 3)}
    report["colour"] = {"tinted_jpeg_max": round(max(tint), 4), "n": len(tint),
                        **{f"doppler_{a:.1%}_min_detected_share": round(min(v), 4) for a, v in dop.items()},
                        "doppler_flagged": {f"{a:.1%}": sum(1 for v in vs if v >= colour_t) for a, vs in dop.items()}}
    report["non_ultrasound"] = {}
    for name, a in nonus.items():
        w = ic.check(a, None, params=params)
        report["non_ultrasound"][name] = {"distance": round(nonus_d[name], 1), "us_distance": round(nonus_us[name], 1), "colour": round(nonus_colour[name], 3),
                                          "warning": w[0].code if w else None}
    report["non_ultrasound_flagged"] = f"{sum(1 for v in report['non_ultrasound'].values() if v['warning'])} of {len(nonus)}"
    report["real_ultrasound_max_distance"] = round(us_max, 2)
    params["separation"] = {k: report[k] for k in ("distance_leave_one_site_out", "crops", "colour", "non_ultrasound_flagged")}
    (out_path or ic.PARAMS_FILE).write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    (OUT / f"report-{'-'.join(sites)}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


def loso(run_root: Path = Path("/work/main/build/loso")) -> None:
    """Missed cancers (argmax) on each held-out site of the leave-one-site-out runs, and how many of
    them a p(malignant) threshold (sensitivity >= 0.92 on the other held-out sites, when there are
    any) and the input check (its leave-one-site-out distance, fitted without the site) flag."""
    from busapp.core.input_check import fit_distribution, mahalanobis

    c = dict(np.load(CACHE))
    full = c["kind"] == "full"
    idx = {k: i for i, k in enumerate(c["key"]) if full[i]}
    runs = {}
    for d in sorted(run_root.glob("*/held_out.npz")):
        with np.load(d) as z:
            runs[str(z["sites"][0])] = {k: z[k] for k in z.files}
    p_mal = {}
    for site, z in runs.items():
        lg = z["logits"] - z["logits"].max(1, keepdims=True)
        p = np.exp(lg) / np.exp(lg).sum(1, keepdims=True)
        p_mal[site] = (p, z["y"])
    out = {}
    for site, (p, y) in p_mal.items():
        others = [(q[:, 2][yy == 2]) for s2, (q, yy) in p_mal.items() if s2 != site]
        t = min(float(np.quantile(o, 0.08)) for o in others) if others else None
        keys = runs[site]["keys"]
        fit_rows = full & (c["site"] != site) & (c["split"] == "train")
        m, inv = fit_distribution(c["stats"][fit_rows])
        ref = full & (c["site"] != site) & (c["split"] == "val")
        thr = float(np.quantile(mahalanobis(c["stats"][ref], m, inv), 0.98))
        dist = mahalanobis(c["stats"][[idx[k] for k in keys]], m, inv)
        cancer = y == 2
        missed = cancer & (p.argmax(1) != 2)
        out[site] = {
            "n_cancers": int(cancer.sum()), "missed_argmax": int(missed.sum()),
            "threshold_from_other_sites": None if t is None else round(t, 3),
            "missed_flagged_by_threshold": None if t is None else int((missed & (p[:, 2] >= t)).sum()),
            "missed_flagged_by_input_check": int((missed & (dist >= thr)).sum()),
            "missed_flagged_by_either": None if t is None else int((missed & ((p[:, 2] >= t) | (dist >= thr))).sum()),
            "input_check_threshold": round(thr, 2),
        }
    (OUT / "loso_flags.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "fit":
        # busnet 1.5.0 (no card block, uses the fallback file) was trained on BUSI and BrEaST only;
        # busnet 2 trains on all three sites: its card block is written for the lead to merge.
        fit(("busi", "breast_lesions_usg"))
        fit(SITES, OUT / "card_block_input_check.json")
    else:
        {"extract": extract, "restat": restat, "loso": loso}[sys.argv[1]]()
