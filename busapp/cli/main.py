"""``busapp-cli``: the app's analysis from a terminal, one JSON object per image on stdout.

    busapp-cli predict [--mask-dir DIR] IMAGE...   (never replaces an input or a file busapp did not
                                                 write: such a mask gets the next free name, "mask_note")
    busapp-cli batch FOLDER --out DIR      (CSV + masks; progress on stderr; see busapp.cli.batch)
    busapp-cli validate FOLDER --labels LABELS.csv --out DIR   (site validation; see busapp.cli.validate)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from busapp import DISCLAIMER, __version__


def mask_path_for(mask_dir: Path, source: Path, inputs: list[Path], taken: set[str]) -> tuple[Path, str | None]:
    """``DIR/<image stem>.png``, or the next free ``<stem>-N.png`` when that name is an input, a file
    busapp did not write, or another image's mask in this run; (path, the sentence saying so)."""
    from busapp.core.output_paths import claim_output, fit_name

    return claim_output(mask_dir / fit_name(source.stem, ".png"), protected=inputs, taken=taken)


def cmd_predict(args: argparse.Namespace) -> int:
    from busapp.core.analysis import Analyzer, describe_failure
    from busapp.core.atomic import save_mask_png
    from busapp.core.audit import AuditLog
    from busapp.core.imageio import ImageLoadError, load_image
    from busapp.core.measure import CalibrationStore
    from busapp.core.model_bundle import ModelBundleError
    from busapp.core.output_paths import describe_os_error
    from busapp.core.predictor import Predictor

    try:
        predictor = Predictor(args.model, num_threads=args.threads)
    except ModelBundleError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    analyzer = Analyzer(predictor, calibrations=CalibrationStore(), audit=AuditLog())
    if args.mask_dir:
        try:
            args.mask_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(json.dumps({"error": f"The mask folder cannot be made ({describe_os_error(e)})."}), flush=True)
            return 2
    failures = 0
    taken: set[str] = set()
    inputs = [Path(name) for name in args.images]
    for name in args.images:
        path = Path(name)
        record: dict = {"file": str(path)}
        try:  # one line, one outcome: the analysis (and its mask), or one error
            result = analyzer.analyze(load_image(path), 0, source="cli")
            outcome = result.to_json()
            if args.mask_dir:
                mask_path, note = mask_path_for(args.mask_dir, path, inputs, taken)
                save_mask_png(mask_path, result.prediction.mask, exclusive=not mask_path.exists())
                outcome["mask"] = str(mask_path)
                if note:
                    outcome["mask_note"] = note
            if result.audit_error:
                failures += 1
                outcome["audit_error"] = result.audit_error
            record.update(outcome)
        except ImageLoadError as e:
            failures += 1
            record["error"] = str(e)
        except Exception as e:  # one bad file must not stop the others
            failures += 1
            record["error"] = describe_failure(path.name, e)
        print(json.dumps(record), flush=True)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="busapp-cli", description=f"busapp {__version__}. {DISCLAIMER}")
    p.add_argument("--version", action="version", version=f"busapp {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="classify images and write lesion masks; one JSON line per image")
    pr.add_argument("images", nargs="+", help="image files")
    pr.add_argument("--mask-dir", type=Path, help="write each predicted mask as DIR/<name>.png ({0,255}, input size); "
                    "never over an input or a file busapp did not write")
    pr.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the bundled model)")
    pr.add_argument("--threads", type=int, default=2, help="CPU threads for inference")
    pr.set_defaults(func=cmd_predict)
    from busapp.cli.batch import add_batch_parser

    add_batch_parser(sub)
    from busapp.cli.validate import add_validate_parser

    add_validate_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
