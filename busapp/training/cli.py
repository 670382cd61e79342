"""``busapp-train``: from ``../shared/datasets/`` to a model bundle in ``models/``.

    busapp-train split                 # (re)write the committed split file (only when data change)
    busapp-train train [--epochs N]    # fit (resumable) + calibrate + export + evaluate + card
    busapp-train fit / finalize        # the two halves of ``train``
    busapp-train evaluate BUNDLE       # recompute a bundle's test metrics, compare with its card
    busapp-train compare --work-dir A --ensemble-work-dir B ...
                                       # score runs and pairs on validation only (no test peeking)
    busapp-train cv-report --work-dir FOLD0 --ensemble-work-dir FOLD1 ...
                                       # out-of-fold figures, calibration (temperature, class
                                       # bias), mask post-processing and outline rule of
                                       # cross-validation runs (fit --folds N --fold K)
    busapp-train fit --refit --train-datasets busi --work-dir RUN
    busapp-train site-report --work-dir RUN
                                       # cross-site check: that run, with the shipped bundle's
                                       # views and rules, on the data set it never saw
    busapp-train extract-members BUNDLE --out DIR
                                       # a bundle's members as run folders, so finalize can
                                       # pair one with a new run
    busapp-train select-rules BUNDLE --out DIR
                                       # a copy of a train-only bundle with its mask rules chosen
                                       # again on validation (for finalize --refit --rules-from)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from busapp.training.data import DATASETS, SPLIT_FILE, default_data_root

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "models" / "busnet"
DEFAULT_WORK = REPO / "build" / "train"


def _setup_logging(work_dir: Path | None) -> None:
    """Log to stderr, and to ``work_dir/train.log`` when the command writes to a run's folder."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    root = logging.getLogger("busapp")
    root.setLevel(logging.INFO)
    root.propagate = False  # TensorFlow (absl) puts a handler on the root logger: no doubled lines
    for old in list(root.handlers):  # an earlier main() in this process (tests) logged elsewhere
        root.removeHandler(old)
        old.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(work_dir / "train.log"))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)


def main(argv: list[str] | None = None) -> int:
    from busapp.training.finalize import MAX_MEMBERS, MODEL_VERSION
    from busapp.training.fit import FitConfig

    p = argparse.ArgumentParser(prog="busapp-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["split", "train", "fit", "finalize", "evaluate", "compare", "select-rules", "cv-report",
                                        "site-report", "extract-members"])
    p.add_argument("bundle", nargs="?", type=Path, help="bundle folder (evaluate, select-rules, extract-members)")
    p.add_argument("--data", type=Path, default=None, help="datasets folder (default ../shared/datasets or $BUSAPP_DATA)")
    p.add_argument("--out", type=Path, default=DEFAULT_BUNDLE, help="bundle folder to write")
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK, help="checkpoints, cache and logs")
    p.add_argument("--ensemble-work-dir", type=Path, action="append", default=[],
                   help="finalize: another training run to consider for the ensemble (repeatable); "
                        "the members are chosen on validation")
    p.add_argument("--split-file", type=Path, default=SPLIT_FILE)
    p.add_argument("--epochs", type=int, default=FitConfig.epochs)
    p.add_argument("--size", type=int, default=FitConfig.size)
    p.add_argument("--batch-size", type=int, default=FitConfig.batch_size)
    p.add_argument("--seed", type=int, default=FitConfig.seed)
    p.add_argument("--normal-oversample", type=int, default=FitConfig.normal_oversample,
                   help="repeat normal training images this many times per epoch")
    p.add_argument("--presence-weight", type=float, default=FitConfig.presence_weight,
                   help="weight of the image-level lesion-presence loss on the mask (0: off)")
    p.add_argument("--presence-normal-only", action="store_true",
                   help="the presence loss counts normal images only")
    p.add_argument("--augment", choices=("standard", "strong", "domain"), default=FitConfig.augment,
                   help="augmentation strength: strong widens the geometric and intensity ranges and adds "
                        "a gamma curve and speckle-like noise; domain adds lower resolution, depth-dependent "
                        "gain and contrast about black (scanner and site differences)")
    p.add_argument("--train-datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                   help="fit: train on these data sets only (a cross-site check for site-report; the others stay unseen)")
    p.add_argument("--weight-decay", type=float, default=FitConfig.weight_decay, help="AdamW decoupled weight decay")
    p.add_argument("--lesion-pool", action="store_true",
                   help="the classifier also pools the features under the predicted lesion")
    p.add_argument("--refit", action="store_true",
                   help="fit: train on train + val with a recipe fixed beforehand, keeping the last epoch; "
                        "finalize: take the temperature and mask rules from --rules-from instead of fitting "
                        "them on validation (the members saw it)")
    p.add_argument("--folds", type=int, default=0,
                   help="fit: cross-validation over train + val in this many folds (by duplicate group); "
                        "train on all but --fold, hold that fold out, keep the last epoch")
    p.add_argument("--fold", type=int, default=0, help="fit --folds: the fold held out (0-based)")
    p.add_argument("--rules-from", type=Path, default=DEFAULT_BUNDLE / "card.json",
                   help="finalize --refit: the card whose temperature and mask rules to carry over; "
                        "site-report: the card whose views, temperature and mask rules the run gets")
    p.add_argument("--calibration-from", type=Path, default=None,
                   help="finalize --refit: a cv-report JSON of the members' recipes; its out-of-fold calibration, "
                        "mask post-processing and outline rule replace those of --rules-from")
    p.add_argument("--zoom-in", action="store_true",
                   help="cv-report: each member also sees the central 90%% of the image enlarged (a third "
                        "test-time view); finalize --calibration-from then builds the graph with it")
    p.add_argument("--model-version", default=None, help="finalize: the version written to the card")
    p.add_argument("--max-members", type=int, default=MAX_MEMBERS,
                   help="finalize: at most this many runs in the shipped graph (default %(default)s; each adds ~12 ms per image "
                        "on LiteRT over image + mirror, ~16 ms with the enlarged centre, and ~14 MB)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images of each split (smoke tests)")
    p.add_argument("--no-pretrained", action="store_true", help="random initial weights (no ImageNet)")
    p.add_argument("--amend-card", action="store_true",
                   help="evaluate: if the card's test figures reproduce, add the per-data-set figures to it; "
                        "site-report: add the report and a limitation saying what it found to the --rules-from card")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
    args = p.parse_args(argv)
    args.model_version = args.model_version or MODEL_VERSION
    if args.calibration_from and not (args.refit and args.command == "finalize"):
        p.error("--calibration-from goes with finalize --refit")
    if set(args.train_datasets) != set(DATASETS) and args.command != "fit":
        p.error("--train-datasets goes with fit (a cross-site run, read by site-report)")
    if args.zoom_in and args.command != "cv-report":
        p.error("--zoom-in goes with cv-report (finalize reads the views from --calibration-from)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data_root = args.data or default_data_root()

    if args.command == "split":
        from busapp.training.split import main as split_main

        counts: dict[str, int] = {}
        for s in split_main(args.split_file).values():
            counts[s] = counts.get(s, 0) + 1
        print(json.dumps(counts))
        return 0

    if args.command == "evaluate":
        from busapp.training.finalize import evaluate_bundle

        bundle = args.bundle or args.out
        card_path = bundle / "card.json"
        result = evaluate_bundle(bundle, data_root, args.split_file, n_boot=args.bootstrap if args.amend_card else 0)
        card = json.loads(card_path.read_text())
        worst = 0.0
        for k, v in result["metrics"].items():
            ref = card["metrics"]["test"][k]["value"]
            worst = max(worst, abs(v - ref))
            print(f"{k:28s} {v:.4f}  card {ref:.4f}")
        print(f"largest difference from the card: {worst:.4f}")
        for name, part in result["by_dataset"].items():
            figures = ", ".join(f"{k} {v['value']:.3f}" for k, v in part["metrics"].items() if v["value"] is not None)
            print(f"{name} ({part['n_images']} images): {figures}")
        if worst > 0.01:
            return 1
        if args.amend_card:
            # Adds what an older finalize did not write; the figures above reproduced the card's.
            from busapp.training.finalize import write_card

            card["metrics"]["test_by_dataset"] = result["by_dataset"]
            write_card(card_path, card)
            print(f"{card_path}: test_by_dataset written")
        return 0

    if args.command == "extract-members":
        from busapp.training.members import extract_members

        if args.bundle is None or args.out == DEFAULT_BUNDLE:
            p.error("extract-members needs a BUNDLE and an --out folder for the run folders")
        for folder in extract_members(args.bundle, args.out):
            print(folder)
        return 0

    # compare and cv-report only read runs: they must not write into the first run's log
    _setup_logging(None if args.command in ("compare", "cv-report", "site-report") else args.work_dir)
    from busapp.training.data import records_for

    def split(name: str):
        recs = records_for(name, data_root, args.split_file)
        if args.command == "fit":
            recs = [r for r in recs if r.dataset in cfg.datasets]
        return recs[: args.limit] if args.limit else recs

    cfg = FitConfig(size=args.size, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    pretrained=not args.no_pretrained, normal_oversample=args.normal_oversample,
                    lesion_pool=args.lesion_pool, weight_decay=args.weight_decay,
                    presence_weight=args.presence_weight, presence_normal_only=args.presence_normal_only,
                    augment=args.augment, datasets=tuple(args.train_datasets))
    if args.command == "select-rules":
        from busapp.training.finalize import MASK_RULE_KEYS, reselect_mask_rules

        if args.bundle is None or args.out == DEFAULT_BUNDLE:
            p.error("select-rules needs a BUNDLE and an --out folder other than the shipped bundle")
        try:
            card = reselect_mask_rules(args.bundle, args.out, split("val"), data_root)
        except ValueError as e:
            print(f"busapp-train: {e}", file=sys.stderr)
            return 2
        print(json.dumps({k: card["postprocessing"][k] for k in MASK_RULE_KEYS}))
        return 0
    if args.command == "cv-report":
        from busapp.training.crossval import out_of_fold, recipes, report
        from busapp.training.model import test_time_views

        runs = [args.work_dir, *args.ensemble_work_dir]
        try:
            rep = report(out_of_fold(runs, split("train") + split("val"), data_root, zoom_in=args.zoom_in))
        except ValueError as e:
            print(f"busapp-train: {e}", file=sys.stderr)
            return 2
        rep = {"folds": json.loads((runs[0] / "cv.json").read_text())["folds"], "runs": [wd.name for wd in runs],
               "recipes": recipes(runs), "test_time_views": test_time_views(args.zoom_in), **rep}
        print(json.dumps(rep, indent=1))
        return 0
    if args.command == "site-report":
        from busapp.training.sites import site_report

        try:
            rep = site_report([args.work_dir, *args.ensemble_work_dir], args.rules_from, data_root, args.split_file, args.work_dir / "site-check",
                              n_boot=args.bootstrap, limit=args.limit)
        except ValueError as e:
            print(f"busapp-train: {e}", file=sys.stderr)
            return 2
        print(json.dumps(rep, indent=1))
        if args.amend_card:
            from busapp.training.finalize import write_card
            from busapp.training.sites import amend_card

            write_card(args.rules_from, amend_card(json.loads(args.rules_from.read_text()), rep))
        return 0
    if args.command == "compare":
        from busapp.training.finalize import compare_runs

        runs = [args.work_dir, *args.ensemble_work_dir]
        _, chosen, table = compare_runs(runs, split("val"), data_root, cfg.size)
        for row in table:
            print(json.dumps({**row, "chosen": row["members"] == [runs[i].name for i in chosen]}))
        return 0
    if args.command in ("train", "fit"):
        from busapp.training.fit import fit

        if args.folds:
            from busapp.training.split import make_folds

            if args.refit or not 0 <= args.fold < args.folds:
                p.error("--folds needs 0 <= --fold < --folds and no --refit")
            dev = split("train") + split("val")
            folds = make_folds(dev, args.folds)
            args.work_dir.mkdir(parents=True, exist_ok=True)
            (args.work_dir / "cv.json").write_text(json.dumps({"folds": args.folds, "fold": args.fold}))
            fit([r for r in dev if folds[r.key] != args.fold], [r for r in dev if folds[r.key] == args.fold],
                data_root, args.work_dir, cfg, keep_last=True)
        elif args.refit:
            fit(split("train") + split("val"), [], data_root, args.work_dir, cfg)
        else:
            fit(split("train"), split("val"), data_root, args.work_dir, cfg)
    if args.command in ("train", "finalize"):
        from busapp.training.finalize import finalize

        try:
            finalize(split("val"), split("test"), data_root, args.work_dir, args.out, cfg, args.split_file,
                     args.bootstrap, extra_work_dirs=args.ensemble_work_dir,
                     rules_from=args.rules_from if args.refit else None, version=args.model_version,
                     cv_report=json.loads(args.calibration_from.read_text()) if args.calibration_from else None,
                     max_members=args.max_members)
        except ValueError as e:
            print(f"busapp-train: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
