"""``busapp-cli batch FOLDER --out DIR``: analyse a folder; progress on stderr, one JSON summary on stdout.

Ctrl-C cancels cleanly: the images done so far stay in DIR/results.csv and a rerun resumes.
Exit status: 0 all analysed, 1 some images failed, 2 the model or folder could not be used,
130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from busapp.core.batch import DEFAULT_LANES, BatchProgress, BatchResult
from busapp.core.wording import duration


class ProgressBar:
    """A one-line terminal progress bar (no tqdm). On a terminal it redraws in place with ``\\r``;
    into a file or pipe it writes a line every 10 % so logs stay readable."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_decile = -1
        self._t0 = time.monotonic()

    def line(self, p: BatchProgress) -> str:
        frac = p.done / p.total if p.total else 1.0
        filled = int(self.width * frac)
        bar = "#" * filled + "." * (self.width - filled)
        rate = p.done / max(1e-9, time.monotonic() - self._t0)
        return f"[{bar}] {p.done}/{p.total} {frac:4.0%}  {rate:5.1f} img/s  left {duration(p.eta_s)}"

    def update(self, p: BatchProgress) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or p.done == p.total:
                self.stream.write("\r" + self.line(p) + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
        else:
            decile = int(10 * p.done / p.total) if p.total else 10
            if decile != self._last_decile:
                self.stream.write(self.line(p) + "\n")
                self.stream.flush()
                self._last_decile = decile

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def cmd_batch(args: argparse.Namespace) -> int:
    from busapp.core.audit import AuditLog
    from busapp.core.batch import lane_predictors, run_batch
    from busapp.core.measure import CalibrationStore
    from busapp.core.model_bundle import ModelBundleError
    from busapp.core.output_paths import OutputRefused, check_separate_folders, describe_os_error
    err = sys.stderr
    if not args.folder.is_dir():
        print(f"busapp-cli batch: {args.folder} is not a folder", file=err)
        return 2
    try:
        check_separate_folders(args.folder, args.out)  # before the model loads: say it at once
    except OutputRefused as e:
        print(f"busapp-cli batch: {e}", file=err)
        return 2
    try:
        if args.lanes < 1 or args.threads < 1:
            print("busapp-cli batch: --lanes and --threads must be at least 1", file=err)
            return 2
        predictor = lane_predictors(args.model, lanes=args.lanes, num_threads=args.threads)
    except ModelBundleError as e:
        print(f"busapp-cli batch: {e}", file=err)
        return 2
    bar = None if args.quiet else ProgressBar(err)
    cancel = threading.Event()
    box: dict[str, BatchResult | BaseException] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            box["result"] = run_batch(
                args.folder,
                args.out,
                predictor,
                progress=bar.update if bar else None,
                cancel=cancel,
                resume=not args.no_resume,
                audit=AuditLog(),
                calibrations=CalibrationStore(),
                source="cli",
            )
        except BaseException as e:
            box["error"] = e
        finally:
            finished.set()

    # The batch runs on a thread so that Ctrl-C here can cancel it cleanly instead of killing it.
    t = threading.Thread(target=work, name="busapp-cli-batch")
    t.start()
    # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C can return early (CPython).
    while True:
        try:
            while not finished.wait(0.2):
                pass
            break
        except KeyboardInterrupt:
            if not cancel.is_set():
                cancel.set()
                print("\nCancelling after the current image...", file=err, flush=True)
    if bar:
        bar.close()
    if "error" in box:
        e = box["error"]
        if isinstance(e, OutputRefused):
            why = str(e)
        elif isinstance(e, OSError):
            why = f"The batch could not run ({describe_os_error(e)})."
        else:
            why = f"The batch could not run ({type(e).__name__})."
        print(f"busapp-cli batch: {why}", file=err)
        return 2
    result = box["result"]
    assert isinstance(result, BatchResult)
    print(result.summary(), file=err)
    print(
        json.dumps(
            {
                "csv": str(result.csv_path),
                "masks": str(result.mask_dir),
                "total": result.total,
                "analysed": result.analysed,
                "skipped": result.skipped,
                "failed": result.failed,
                "not_images": len(result.not_images),
                "cancelled": result.cancelled,
                "seconds": round(result.elapsed_s, 2),
            }
        ),
        flush=True,
    )
    if result.cancelled:
        return 130
    return 1 if result.failed else 0


def add_batch_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "batch",
        help="analyse every image in a folder (recursively): DIR/results.csv + DIR/masks/, resumable",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("folder", type=Path, help="folder of images (searched recursively; never modified)")
    b.add_argument("--out", type=Path, required=True, help="output folder for results.csv and masks/")
    b.add_argument("--no-resume", action="store_true", help="analyse everything again, ignoring an earlier CSV")
    b.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the bundled model)")
    b.add_argument("--lanes", type=int, default=DEFAULT_LANES,
                   help=f"images analysed side by side, one model each (default {DEFAULT_LANES})")
    b.add_argument("--threads", type=int, default=1, help="CPU threads of each lane's model (default 1)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)
