"""After fitting: choose the members, calibrate, export, evaluate the *exported* model on the test
split, write the card. Each step lives in its own module; this one puts them in order.

- members (``members``): chosen on validation among the runs, or, for a refit, the runs given;
- calibration (``calibration``): on validation, from a cross-validation report, or carried over
  from an earlier card;
- the card (``card_writer``), with test figures from the LiteRT file through
  ``busapp.core.predictor`` at the original image resolution (``evaluation``): the same code path
  the app runs, so the card describes what users get.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from busapp.core.model_bundle import CARD_NAME
from busapp.core.predictor import Predictor
from busapp.training import calibration
from busapp.training.calibration import Calibration, fit_temperature
from busapp.training.card_writer import (
    LOW_CONFIDENCE_BELOW,
    MASK_THRESHOLD,
    MODEL_NAME,
    describe,
    with_metrics,
    write_card,
)
from busapp.training.data import Record
from busapp.training.evaluation import (
    compute_metrics,
    evaluate_bundle,
    metrics_by_dataset,
    predict_records,
    subset_figures,
)
from busapp.training.members import MAX_MEMBERS, compare_runs, load_member, member_outputs, run_config
from busapp.training.outline_rules import (
    DICE_TOLERANCE,
    MASK_RULE_KEYS,
    SUPPRESS_CANDIDATES,
    choose_mask_rules,
    pick_mask_rule,
    reselect_mask_rules,
)

log = logging.getLogger("busapp.training")

MODEL_VERSION = "1.1.0"

__all__ = [  # what the other training modules (crossval, sites, loso_eval) import from here
    "DICE_TOLERANCE", "LOW_CONFIDENCE_BELOW", "MASK_RULE_KEYS", "MASK_THRESHOLD", "MAX_MEMBERS", "MODEL_NAME",
    "MODEL_VERSION", "SUPPRESS_CANDIDATES", "compare_runs", "compute_metrics", "evaluate_bundle", "finalize",
    "fit_temperature", "load_member", "member_outputs", "metrics_by_dataset", "pick_mask_rule", "predict_records",
    "reselect_mask_rules", "subset_figures", "write_card",
]


def finalize(
    records_val: list[Record],
    records_test: list[Record],
    data_root: Path,
    work_dirs: list[Path],
    out_dir: Path,
    split_path: Path,
    n_boot: int = 1000,
    max_members: int = MAX_MEMBERS,
    rules_from: Path | None = None,
    version: str = MODEL_VERSION,
    cv_report: dict | None = None,
) -> dict:
    """Build, export, evaluate and describe the bundle from the runs ``work_dirs``.

    Without ``rules_from``: the members are chosen on the validation split among the runs, and
    the temperature and outline rule fitted there (``calibration.on_validation``).

    ``rules_from`` (a refit on train + val): the runs are the members, in order, and the
    temperature and outline rule are that earlier card's (``calibration.carried_over``), or, with
    ``cv_report``, those of a ``busapp-train cv-report`` of the members' own recipes
    (``calibration.from_cv_report``). Nothing is then fitted on data the members saw, and the test
    split stays untouched until the final evaluation.
    """
    from busapp.training.dataset import cached_arrays
    from busapp.training.export import export_tflite, save_keras
    from busapp.training.model import inference_model

    t0 = time.time()
    if cv_report is not None and rules_from is None:
        raise ValueError("a cross-validation report calibrates a refit only")
    configs = [run_config(wd) for wd in work_dirs]
    size, pretrained = configs[0]["size"], configs[0]["pretrained"]
    if rules_from is None:
        loaded, chosen, table = compare_runs(work_dirs, records_val, data_root, max_members)
        work_dirs, members = [work_dirs[i] for i in chosen], [loaded[i] for i in chosen]
        xv, _mv, yv = cached_arrays(data_root, records_val, size, work_dirs[0] / "cache")
        cal = calibration.on_validation(members, xv, yv)
        member_selection = {
            "rule": f"of the candidate training runs, the subset of at most {max_members} with the best "
                    "validation macro-F1 + Dice of the averaged outputs (image and mirror), at model resolution",
            "validation": table,
        }
    else:
        if len(work_dirs) > max_members:
            raise ValueError(f"a refit ships its runs as they are: at most {max_members}, got {len(work_dirs)}")
        prior = json.loads(rules_from.read_text())
        cal = calibration.from_cv_report(cv_report, prior, work_dirs) if cv_report else calibration.carried_over(prior)
        members = [load_member(wd, i) for i, wd in enumerate(work_dirs)]
        member_selection = {"rule": cal.member_rule}
        log.info("refit: %d member(s); %s", len(members), cal.description)

    out_dir.mkdir(parents=True, exist_ok=True)
    final = inference_model(members, cal.temperature, zoom_in="zoom_in" in cal.views)
    files = {"tflite": out_dir / f"{MODEL_NAME}.tflite", "keras": out_dir / f"{MODEL_NAME}.keras"}
    save_keras(final, files["keras"])
    export_tflite(final, files["tflite"])
    card = describe(version, files, size, pretrained, int(final.count_params()), work_dirs, cal, member_selection,
                    split_path)
    card_path = out_dir / CARD_NAME
    write_card(card_path, card)  # the predictor reads the card; the outline rule and metrics follow
    if cal.outline is None:
        choose_outline_on_validation(card, cal, out_dir, records_val, data_root)
        write_card(card_path, card)
    log.info("evaluating the exported model on %d test images", len(records_test))
    out = predict_records(Predictor(out_dir, verify=False), records_test, data_root)
    write_card(card_path, with_metrics(card, out, n_boot, cal, data_root, split_path))
    log.info("bundle written to %s in %.0f s: %s", out_dir, time.time() - t0,
             {k: round(v["value"], 4) for k, v in card["metrics"]["test"].items()})
    return card


def choose_outline_on_validation(card: dict, cal: Calibration, out_dir: Path, records_val: list[Record],
                                 data_root: Path) -> None:
    """The outline rule of train-only members, chosen through the exported bundle on validation."""
    rules, table = choose_mask_rules(Predictor(out_dir, verify=False), records_val, data_root)
    card["postprocessing"].update(rules)
    card["postprocessing"]["mask_rules_selection"] = {
        "rule": f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best val Dice",
        "validation": table,
    }
    cal.outline = rules
    log.info("outline rule chosen on validation: %s", rules)
