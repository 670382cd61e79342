"""``busapp-train``: from ``../shared/datasets/`` to a model bundle in ``models/``.
Each subcommand has its own options: ``busapp-train COMMAND --help``.

    split                   (re)write the committed split file (only when the data change)
    train                   fit (resumable) + finalize
    fit                     one training run (--refit: train + val; --folds N --fold K: cross-validation)
    finalize                choose members, calibrate, export, evaluate, write the card
    evaluate [BUNDLE]       recompute a bundle's test figures and compare them with its card
    compare                 score runs and pairs on validation only (no test peeking)
    cv-report               out-of-fold figures, temperature and outline rule of cross-validation runs
    site-report             cross-site check: runs trained on some data sets, on the others
    extract-members BUNDLE  a bundle's members as run folders, so finalize can pair one with a new run
    select-rules BUNDLE     a copy of a train-only bundle with its outline rule chosen again on validation
    loso-fit                one leave-one-site-out run of busnet 2 (busapp.training.loso)

Training on your own GPU or CPU: docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from busapp.training.data import DATASETS, SITES, SPLIT_FILE, default_data_root

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "models" / "busnet"
DEFAULT_WORK = REPO / "build" / "train"


class CommandError(Exception):
    """A run cannot go ahead as asked; the message is printed and the exit status is 2."""


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


# --- options shared by several subcommands -------------------------------------------------------


def _data_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", type=Path, default=None, help="datasets folder (default ../shared/datasets or $BUSAPP_DATA)")
    p.add_argument("--split-file", type=Path, default=SPLIT_FILE)
    p.add_argument("--limit", type=int, default=0, help="use only the first N images of each split (smoke tests)")
    return p


def _runs_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK, help="the (first) training run's folder")
    p.add_argument("--ensemble-work-dir", type=Path, action="append", default=[],
                   help="another training run to consider (repeatable)")
    return p


def _fit_options() -> argparse.ArgumentParser:
    from busapp.training.fit import FitConfig

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--epochs", type=int, default=FitConfig.epochs)
    p.add_argument("--size", type=int, default=FitConfig.size, help="model input size in pixels")
    p.add_argument("--batch-size", type=int, default=FitConfig.batch_size)
    p.add_argument("--seed", type=int, default=FitConfig.seed)
    p.add_argument("--weight-decay", type=float, default=FitConfig.weight_decay, help="AdamW decoupled weight decay")
    p.add_argument("--frozen-blocks", type=int, default=FitConfig.frozen_blocks,
                   help="encoder blocks kept at their ImageNet weights (0: train them all)")
    p.add_argument("--normal-oversample", type=int, default=FitConfig.normal_oversample,
                   help="repeat normal training images this many times per epoch")
    p.add_argument("--augment", choices=("standard", "strong", "domain"), default=FitConfig.augment,
                   help="augmentation strength: strong widens the geometric and intensity ranges and adds "
                        "a gamma curve and speckle-like noise; domain adds lower resolution, depth-dependent "
                        "gain and contrast about black (scanner and site differences)")
    p.add_argument("--lesion-pool", action="store_true",
                   help="the classifier also pools the features under the predicted lesion")
    p.add_argument("--no-pretrained", action="store_true", help="random initial weights (no ImageNet)")
    p.add_argument("--train-datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                   help="train on these data sets only (a cross-site check for site-report; the others stay unseen)")
    p.add_argument("--refit", action="store_true",
                   help="train on train + val with a recipe fixed beforehand, keeping the last epoch")
    p.add_argument("--folds", type=int, default=0,
                   help="cross-validation over train + val in this many folds (by duplicate group): "
                        "train on all but --fold, hold that fold out, keep the last epoch")
    p.add_argument("--fold", type=int, default=0, help="with --folds: the fold held out (0-based)")
    p.add_argument("--run-eagerly", action="store_true",
                   help="no compiled train step (smoke tests, debugging: tracing it takes ~15 s)")
    return p


def _finalize_options() -> argparse.ArgumentParser:
    from busapp.training.finalize import MAX_MEMBERS, MODEL_VERSION

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", type=Path, default=DEFAULT_BUNDLE, help="bundle folder to write")
    p.add_argument("--rules-from", type=Path, default=None,
                   help="a refit: the card whose temperature, views and outline rule to carry over "
                        "(the members trained on validation, so nothing is fitted there)")
    p.add_argument("--calibration-from", type=Path, default=None,
                   help="with --rules-from: a cv-report JSON of the members' recipes; its out-of-fold temperature, "
                        "views and outline rule replace those of --rules-from")
    p.add_argument("--model-version", default=MODEL_VERSION, help="the version written to the card")
    p.add_argument("--max-members", type=int, default=MAX_MEMBERS,
                   help="at most this many runs in the shipped graph (default %(default)s; each adds ~12 ms per image "
                        "on LiteRT over image + mirror, ~16 ms with the enlarged centre, and ~14 MB)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="busapp-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data, runs = _data_options(), _runs_options()
    fit, fin = _fit_options(), _finalize_options()

    def add(name: str, func, help: str, parents: list) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, parents=parents)
        sp.set_defaults(func=func)
        return sp

    add("split", cmd_split, "(re)write the committed split file", [data])
    add("fit", cmd_fit, "one training run, resumable from its folder", [data, runs, fit])
    add("finalize", cmd_finalize, "choose members, calibrate, export, evaluate and write the card", [data, runs, fin])
    add("train", cmd_train, "fit, then finalize that run", [data, runs, fit, fin])
    ev = add("evaluate", cmd_evaluate, "recompute a bundle's test figures and compare them with its card", [data])
    ev.add_argument("bundle", nargs="?", type=Path, default=DEFAULT_BUNDLE)
    ev.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals of --amend-card")
    ev.add_argument("--amend-card", action="store_true",
                    help="if the card's test figures reproduce, add the per-data-set figures to it")
    add("compare", cmd_compare, "score runs and their pairs on the validation split", [data, runs]).add_argument(
        "--max-members", type=int, default=fin.get_default("max_members"))
    add("cv-report", cmd_cv_report, "out-of-fold figures, temperature and outline rule of cross-validation runs",
        [data, runs]).add_argument("--zoom-in", action="store_true",
                                   help="each member also sees the central 90%% of the image enlarged (a third view)")
    sr = add("site-report", cmd_site_report, "cross-site check: runs trained on some data sets, measured on the others",
             [data, runs])
    sr.add_argument("--rules-from", type=Path, default=DEFAULT_BUNDLE / "card.json",
                    help="the card whose views, temperature and outline rule the runs get")
    sr.add_argument("--bootstrap", type=int, default=1000)
    sr.add_argument("--amend-card", action="store_true", help="add a limitation with its figures to the --rules-from card")
    em = add("extract-members", cmd_extract_members, "a bundle's members as run folders", [])
    em.add_argument("bundle", type=Path)
    em.add_argument("--out", type=Path, required=True, help="folder for the run folders")
    rs = add("select-rules", cmd_select_rules, "a copy of a train-only bundle, outline rule chosen again on validation", [data])
    rs.add_argument("bundle", type=Path)
    rs.add_argument("--out", type=Path, required=True, help="the copy's folder (not the shipped bundle)")
    lf = add("loso-fit", cmd_loso_fit, "one leave-one-site-out run of busnet 2 (docs/training.md)", [])
    lf.add_argument("--held-out", choices=SITES, default=None, help="the site this run never sees (default: none)")
    lf.add_argument("--work-dir", type=Path, required=True)
    lf.add_argument("--data", type=Path, default=None)
    lf.add_argument("--split-file", type=Path, default=SPLIT_FILE)
    lf.add_argument("--recipe", default="R1", help="a recipe of busapp.training.loso.RECIPES")
    lf.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (smoke tests)")
    lf.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    lf.add_argument("--limit", type=int, default=0, help="only the first N images (smoke tests)")
    lf.add_argument("--run-eagerly", action="store_true", help="no compiled train step (smoke tests)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.data = args.data if getattr(args, "data", None) else default_data_root()
    try:
        return args.func(args) or 0
    except CommandError as e:
        parser.error(f"{args.command}: {e}")
    except ValueError as e:  # a run or report that does not fit what was asked
        print(f"busapp-train: {e}", file=sys.stderr)
        return 2


# --- the subcommands -------------------------------------------------------------------------------


def _records(args, split: str, datasets: tuple[str, ...] = DATASETS) -> list:
    from busapp.training.data import records_for

    recs = records_for(split, args.data, args.split_file, datasets)
    return recs[: args.limit] if args.limit else recs


def cmd_split(args) -> int:
    from busapp.training.split import main as split_main

    counts: dict[str, int] = {}
    for s in split_main(args.split_file).values():
        counts[s] = counts.get(s, 0) + 1
    print(json.dumps(counts))
    return 0


def cmd_fit(args) -> int:
    from busapp.training.fit import FitConfig, fit

    cfg = FitConfig(size=args.size, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    pretrained=not args.no_pretrained, normal_oversample=args.normal_oversample,
                    lesion_pool=args.lesion_pool, weight_decay=args.weight_decay, augment=args.augment,
                    frozen_blocks=args.frozen_blocks, datasets=tuple(args.train_datasets))
    if args.folds and (args.refit or not 0 <= args.fold < args.folds):
        raise CommandError("--folds needs 0 <= --fold < --folds and no --refit")
    _setup_logging(args.work_dir)
    train, val = _records(args, "train", cfg.datasets), _records(args, "val", cfg.datasets)
    if args.folds:
        from busapp.training.split import make_folds

        dev = train + val
        folds = make_folds(dev, args.folds)
        args.work_dir.mkdir(parents=True, exist_ok=True)
        (args.work_dir / "cv.json").write_text(json.dumps({"folds": args.folds, "fold": args.fold}))
        fit([r for r in dev if folds[r.key] != args.fold], [r for r in dev if folds[r.key] == args.fold],
            args.data, args.work_dir, cfg, keep_last=True, run_eagerly=args.run_eagerly)
    elif args.refit:
        fit(train + val, [], args.data, args.work_dir, cfg, run_eagerly=args.run_eagerly)
    else:
        fit(train, val, args.data, args.work_dir, cfg, run_eagerly=args.run_eagerly)
    return 0


def cmd_finalize(args) -> int:
    from busapp.training.finalize import finalize

    if args.calibration_from and not args.rules_from:
        raise CommandError("--calibration-from goes with --rules-from (a refit)")
    _setup_logging(args.work_dir)
    finalize(_records(args, "val"), _records(args, "test"), args.data, [args.work_dir, *args.ensemble_work_dir],
             args.out, args.split_file, args.bootstrap, max_members=args.max_members, rules_from=args.rules_from,
             version=args.model_version,
             cv_report=json.loads(args.calibration_from.read_text()) if args.calibration_from else None)
    return 0


def cmd_train(args) -> int:
    if args.rules_from or args.calibration_from or args.folds:
        raise CommandError("train fits and finalizes one run; for refits and folds use fit and finalize")
    cmd_fit(args)
    return cmd_finalize(args)


def cmd_evaluate(args) -> int:
    from busapp.training.card_writer import write_card
    from busapp.training.evaluation import evaluate_bundle

    card_path = args.bundle / "card.json"
    result = evaluate_bundle(args.bundle, args.data, args.split_file, n_boot=args.bootstrap if args.amend_card else 0)
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
    if args.amend_card:  # adds what an older finalize did not write; the figures above reproduced the card's
        card["metrics"]["test_by_dataset"] = result["by_dataset"]
        write_card(card_path, card)
        print(f"{card_path}: test_by_dataset written")
    return 0


def cmd_compare(args) -> int:
    from busapp.training.members import compare_runs

    _setup_logging(None)  # only reads the runs: nothing goes into the first run's log
    runs = [args.work_dir, *args.ensemble_work_dir]
    _, chosen, table = compare_runs(runs, _records(args, "val"), args.data, args.max_members)
    for row in table:
        print(json.dumps({**row, "chosen": row["members"] == [runs[i].name for i in chosen]}))
    return 0


def cmd_cv_report(args) -> int:
    from busapp.training.crossval import out_of_fold, recipes, report
    from busapp.training.model import test_time_views

    _setup_logging(None)
    runs = [args.work_dir, *args.ensemble_work_dir]
    rep = report(out_of_fold(runs, _records(args, "train") + _records(args, "val"), args.data, zoom_in=args.zoom_in))
    rep = {"folds": json.loads((runs[0] / "cv.json").read_text())["folds"], "runs": [wd.name for wd in runs],
           "recipes": recipes(runs), "test_time_views": test_time_views(args.zoom_in), **rep}
    print(json.dumps(rep, indent=1))
    return 0


def cmd_site_report(args) -> int:
    from busapp.training.card_writer import write_card
    from busapp.training.sites import amend_card, site_report

    _setup_logging(None)
    rep = site_report([args.work_dir, *args.ensemble_work_dir], args.rules_from, args.data, args.split_file,
                      args.work_dir / "site-check", n_boot=args.bootstrap, limit=args.limit)
    print(json.dumps(rep, indent=1))
    if args.amend_card:
        write_card(args.rules_from, amend_card(json.loads(args.rules_from.read_text()), rep))
    return 0


def cmd_extract_members(args) -> int:
    from busapp.training.members import extract_members

    for folder in extract_members(args.bundle, args.out):
        print(folder)
    return 0


def cmd_select_rules(args) -> int:
    from busapp.training.outline_rules import MASK_RULE_KEYS, reselect_mask_rules

    if args.out.resolve() == DEFAULT_BUNDLE.resolve():
        raise CommandError("--out must be another folder than the shipped bundle")
    card = reselect_mask_rules(args.bundle, args.out, _records(args, "val"), args.data)
    print(json.dumps({k: card["postprocessing"][k] for k in MASK_RULE_KEYS}))
    return 0


def cmd_loso_fit(args) -> int:
    from busapp.training.loso import RECIPES, loso_fit

    if args.recipe not in RECIPES:
        raise CommandError(f"unknown --recipe {args.recipe!r}; one of {', '.join(RECIPES)}")
    if args.threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    recipe = RECIPES[args.recipe]
    _setup_logging(args.work_dir)
    loso_fit(args.held_out, args.data, args.work_dir, replace(recipe, epochs=args.epochs or recipe.epochs),
             split_file=args.split_file, limit=args.limit, run_eagerly=args.run_eagerly)
    return 0


if __name__ == "__main__":
    sys.exit(main())
