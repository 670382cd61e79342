"""Cross-site check: how a recipe does on a data set (a country, its scanners) it never saw.

The hidden evaluation of busapp's models includes a data set from another country and other
scanners, which the pooled test split cannot show. So: one run of a member recipe trained on
some data sets only (``busapp-train fit --refit --train-datasets busi``), put through the shipped
bundle's own pipeline (its test-time views, temperature, mask threshold and outline
rule, from its card), exported to LiteRT and measured at original resolution like the card's
test figures, on

- ``unseen_all``: every image of the data sets it never trained on (all splits: none was seen);
  ``unseen_dev``, those outside the test split, for comparing recipes without reading the test split,
- ``unseen_test`` and ``seen_test``: the test split, per side. The shipped bundle's own figures
  on the same images (its card's ``test_by_dataset``) sit beside them: the drop from the shipped
  bundle on the seen site's test images shows what one member and less data cost; a larger drop
  on the unseen site is what the site costs.

Nothing here is chosen on these figures: the recipe and rules are the shipped bundle's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from busapp.core.model_bundle import CARD_NAME, sha256_file
from busapp.core.predictor import Predictor, lesion_mask, outline_suppressed
from busapp.core.preprocess import preprocess
from busapp.training.card_writer import write_card
from busapp.training.data import CLASSES, DATASETS, Record, load_image, load_mask, read_all, read_split
from busapp.training.evaluation import metrics_by_dataset, predict_records, subset_figures
from busapp.training.members import load_member
from busapp.training.metrics import dice_iou
from busapp.training.outline_rules import SUPPRESS_CANDIDATES

log = logging.getLogger("busapp.training")


def site_bundle(work_dirs: list[Path], card: dict, out_dir: Path) -> Path:
    """The runs as a bundle (their logits averaged) with the shipped card's views, calibration and
    mask rules."""
    from busapp.training.export import export_tflite
    from busapp.training.model import inference_model

    post = card["postprocessing"]
    views = card["architecture"]["test_time_views"]
    members = [load_member(wd, i) for i, wd in enumerate(work_dirs)]
    model = inference_model(members, float(post["temperature"]), zoom_in="zoom_in" in views)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflite = out_dir / "site-check.tflite"
    export_tflite(model, tflite)
    check = {k: card[k] for k in ("name", "classes", "input", "preprocessing", "postprocessing")}
    check.update(version=f"{card['version']}-site-check", files={"tflite": {"path": tflite.name, "sha256": sha256_file(tflite)}})
    write_card(out_dir / CARD_NAME, check)
    return out_dir


def outline_rule_costs(predictor: Predictor, records: list[Record], data_root: Path, card: dict) -> list[dict]:
    """What each outline-withholding candidate (``SUPPRESS_CANDIDATES``; the bundle's threshold and
    minimum area) costs on lesion images of a site the models never saw: mean Dice, and the share
    left without an outline. Beside each, the candidate's figures on the card's cross-validation
    outputs (in-site), where it has them: the rule trades outlined normal images in-site against
    lost outlines under a change of site."""
    b = predictor.bundle
    raw_dice, empty, probs = [], [], []
    for rec in records:
        if rec.label == "normal":
            continue
        img = load_image(data_root, rec)
        x, lb = preprocess(img, b.input_size)
        mask_prob, p = predictor.run(x)
        mask = lesion_mask(mask_prob, lb, b.mask_threshold, b.min_area_fraction, False, b.mask_keep)
        truth = load_mask(data_root, rec, img.shape)
        raw_dice.append(dice_iou(mask, truth)[0])
        empty.append(not mask.any())
        probs.append(p.astype(float))
    raw_dice, empty = np.array(raw_dice), np.array(empty)
    in_site = {(r["suppress_mask_when_normal"], r["suppress_mask_when_normal_at_least"]): r
               for r in card["postprocessing"].get("mask_rules_selection", {}).get("cross_validation", [])
               if r.get("min_area_fraction", 0.0) == b.min_area_fraction}
    rows = []
    for when_normal, at_least in SUPPRESS_CANDIDATES:
        withheld = np.array([outline_suppressed(p, CLASSES, b.low_confidence_below, when_normal, at_least) is not None
                             for p in probs], bool)
        cv = in_site.get((when_normal, at_least), {})
        rows.append({"suppress_mask_when_normal": when_normal, "suppress_mask_when_normal_at_least": at_least,
                     "unseen_lesion_images": len(raw_dice),
                     "unseen_dice_mean": float(np.where(withheld, 0.0, raw_dice).mean()),
                     "unseen_lesions_without_outline": float((withheld | empty).mean()),
                     "in_site_cv_dice_mean": cv.get("dice_mean"),
                     "in_site_cv_normal_nonempty_rate": cv.get("normal_nonempty_rate")})
    return rows


def site_report(work_dirs: list[Path], card_path: Path, data_root: Path, split_path: Path, bundle_dir: Path,
                n_boot: int = 1000, limit: int = 0) -> dict:
    """Figures of the runs ``work_dirs`` (trained on the same fewer data sets; several are averaged
    as an ensemble's members) on the others, as described above. ``limit``: the first N images
    of each side only (smoke tests)."""
    configs = [json.loads((wd / "config.json").read_text()) for wd in work_dirs]
    trained_sets = {tuple(c.get("datasets", DATASETS)) for c in configs}
    if len(trained_sets) > 1:
        raise ValueError(f"the runs trained on different data sets: {sorted(trained_sets)}")
    trained = list(trained_sets.pop())
    unseen = [d for d in DATASETS if d not in trained]
    if not unseen:
        raise ValueError("the runs trained on every data set: nothing unseen to measure them on")
    card = json.loads(card_path.read_text())
    predictor = Predictor(site_bundle(work_dirs, card, bundle_dir))

    assignment = read_split(split_path)
    records = [r for r in read_all(data_root) if assignment.get(r.key) in ("train", "val", "test")]
    unseen_all = [r for r in records if r.dataset in unseen]
    seen_test = [r for r in records if r.dataset in trained and assignment[r.key] == "test"]
    if limit:
        unseen_all, seen_test = unseen_all[:limit], seen_test[:limit]
    log.info("cross-site check: %d unseen images (%s), %d seen-site test images", len(unseen_all),
             ", ".join(unseen), len(seen_test))
    out_unseen = predict_records(predictor, unseen_all, data_root)
    out_seen = predict_records(predictor, seen_test, data_root)
    in_test = np.array([assignment[r.key] == "test" for r in unseen_all])

    shipped = card.get("metrics", {}).get("test_by_dataset", {})
    return {
        "what": (f"{len(work_dirs)} run(s) of member recipes trained on " + ", ".join(trained) + " only, "
                 f"with {card['name']} {card['version']}'s test-time views, temperature and mask rules, through LiteRT "
                 "at original resolution; the shipped bundle's figures on the same test images beside it"),
        "runs": [wd.name for wd in work_dirs],
        "recipes": configs,
        "trained_on": trained,
        "unseen": unseen,
        "unseen_all": subset_figures(out_unseen, n_boot),
        "unseen_test": subset_figures({k: v[in_test] for k, v in out_unseen.items()}, n_boot),
        # outside the test split: the figures a comparison of recipes may use
        "unseen_dev": subset_figures({k: v[~in_test] for k, v in out_unseen.items()}, n_boot),
        "seen_test": metrics_by_dataset(out_seen, n_boot),
        "shipped_test_by_dataset": {"bundle": f"{card['name']} {card['version']}", **shipped},
        "outline_rules": {
            "what": ("each outline-withholding candidate on the unseen site's lesion images outside its test split "
                     "(left out so that a later choice of rule may use this table), beside its in-site "
                     "cross-validation figures from the card"),
            "rows": outline_rule_costs(predictor, [r for r in unseen_all if assignment[r.key] != "test"], data_root, card),
        },
        "ci": f"95% percentile bootstrap over duplicate groups, {n_boot} resamples",
    }


SITE_NAMES = {"busi": "BUSI", "breast_lesions_usg": "BrEaST-Lesions-USG"}


def amend_card(card: dict, report: dict) -> dict:
    """The card with a limitation that gives the report's figures (the About dialog shows
    limitations), replacing an earlier check's. The report itself is history: it goes to
    ``docs/history/`` beside docs/model-history.md, not into the card."""
    keys = ("accuracy", "auc_benign_vs_malignant", "dice_mean")

    def figures(part: dict) -> str:
        values = (part["metrics"][k]["value"] for k in keys)
        return ", ".join("n/a" if v is None else f"{v:.2f}" for v in values)  # n/a: e.g. no malignant image

    def names(sets: list[str]) -> str:
        return " and ".join(SITE_NAMES.get(d, d) for d in sets)

    seen = "; ".join(f"{figures(part)} on {SITE_NAMES.get(d, d)}'s {part['n_images']} test images"
                     for d, part in report["seen_test"].items())
    line = (f"Cross-site check: the same recipes trained on {names(report['trained_on'])} alone reached accuracy, "
            f"benign-vs-malignant AUC and mean Dice of {figures(report['unseen_all'])} on "
            f"{names(report['unseen'])}'s {report['unseen_all']['n_images']} images, against {seen}. Images from "
            "another hospital or scanner may lose as much.")
    limitations = [x for x in card.get("limitations", []) if not x.startswith("Cross-site check:")]
    return {**card, "limitations": [*limitations, line]}
