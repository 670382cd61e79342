"""``busapp-cli validate FOLDER --labels LABELS.csv --out DIR``: busapp on a site's own labelled images.

Writes validation.json (figures with intervals), validation.csv (one row per image, by sha256)
and validation.pdf (verdict, figures, ROC and reliability plots, confusion matrix) into DIR and
prints the verdict. Images are read where they are; nothing is copied or sent anywhere.
``--set-site-threshold`` stores the threshold the run justifies (``core.site_threshold``);
``busapp-cli site-threshold [--clear]`` shows or removes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_validate(args: argparse.Namespace) -> int:
    from busapp.core.analysis import Analyzer
    from busapp.core.audit import AuditLog
    from busapp.core.model_bundle import ModelBundleError
    from busapp.core.output_paths import describe_os_error
    from busapp.core.predictor import Predictor
    from busapp.core.site_validation import LabelsError, read_labels, run_validation, write_outputs

    if not args.folder.is_dir():
        print(f"{args.folder}: not a folder.", file=sys.stderr)
        return 2
    try:
        read_labels(args.folder, args.labels)  # a bad labels file is refused before the model loads
        analyzer = Analyzer(Predictor(args.model, num_threads=args.threads), audit=AuditLog())
    except (LabelsError, ModelBundleError) as e:
        print(str(e), file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rvalidate: {done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

    run = run_validation(args.folder, args.labels, analyzer, progress=progress)
    try:
        paths = write_outputs(run, args.out, names=args.names)
    except OSError as e:
        print(f"{args.out}: the report could not be written ({describe_os_error(e)}).", file=sys.stderr)
        return 2
    f = run.figures
    summary = {"verdict": f["verdict"]["status"], "text": f["verdict"]["text"],
               "sensitivity": f["sensitivity"]["value"], "specificity": f["specificity"]["value"],
               "auc": f["auc"]["value"], "outputs": {k: str(v) for k, v in paths.items()}}
    if args.set_site_threshold:
        summary["site_threshold"] = _set_site_threshold(run, paths["json"], analyzer)
    print(json.dumps(summary), flush=True)
    return 0


def _set_site_threshold(run: object, report_path: Path, analyzer: object) -> dict:
    """Store the threshold this validation justifies (core.site_threshold), or say why not."""
    from busapp.core import site_threshold

    out = site_threshold.set_from_run(run, report_path, analyzer.bundle.card, str(analyzer.model.sha256),
                                      analyzer.audit)
    if not out["set"]:
        print(out["reason"], file=sys.stderr)
    return out


def cmd_site_threshold(args: argparse.Namespace) -> int:
    from busapp.core import site_threshold
    from busapp.core.audit import AuditLog

    if args.clear:
        done = site_threshold.clear(AuditLog())
        print(json.dumps({"cleared": done, "file": str(site_threshold.path())}))
        return 0
    p = site_threshold.path()
    print(p.read_text(encoding="utf-8") if p.exists() else json.dumps({"site_threshold": None}))
    return 0


def add_validate_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="check busapp on your own labelled images: PDF, JSON and CSV report")
    v.add_argument("folder", type=Path, help="folder of images")
    v.add_argument("--labels", type=Path, required=True,
                   help="CSV with a header: file (relative to FOLDER), label (normal/benign/malignant), optional mask")
    v.add_argument("--out", type=Path, required=True, help="folder for validation.pdf/.json/.csv")
    v.add_argument("--names", action="store_true", help="include file names in the CSV (default: sha256 only)")
    v.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the bundled model)")
    v.add_argument("--threads", type=int, default=2, help="CPU threads for inference")
    v.add_argument("--quiet", action="store_true", help="no progress on stderr")
    v.add_argument("--set-site-threshold", action="store_true",
                   help="store the threshold this validation justifies (sensitivity held at the card's validated "
                        "level) in your data folder with this report; it then replaces the card's threshold")
    v.set_defaults(func=cmd_validate)
    st = sub.add_parser("site-threshold", help="show (or --clear) the site threshold set by validate")
    st.add_argument("--clear", action="store_true", help="remove it: the card's threshold applies again")
    st.set_defaults(func=cmd_site_threshold)
