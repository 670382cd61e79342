"""Batch throughput (images per second) of ``busapp.core.batch.run_batch`` on this machine.

Copies N real ultrasound images (BrEaST-Lesions-USG and BUSI from the shared data sets, or the
samples shipped in resources/samples) to a temporary folder, runs the whole batch (read, sha256,
decode, model, measurements, mask PNG, CSV) and prints images/s. Target: >= 15 images/s.

Run: .venv/bin/python benchmarks/bench_batch.py [-n 150] [--threads 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from busapp.core.batch import lane_predictors, run_batch

REPO = Path(__file__).resolve().parents[1]
TARGET = 15.0


def source_images(n: int) -> list[Path]:
    try:
        from busapp.training.data import default_data_root

        root = default_data_root()
    except Exception:
        root = REPO.parent / "shared" / "datasets"
    files = sorted((root / "breast_lesions_usg").glob("*/case*[0-9].png")) + sorted(
        p for p in (root / "busi").glob("*/*).png")
    )
    files = files or sorted((REPO / "resources" / "samples").glob("*.png"))
    if not files:
        raise SystemExit("no images found")
    return [files[i % len(files)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=150, help="number of images")
    ap.add_argument("--lanes", type=int, default=2, help="images analysed side by side (busapp-cli batch --lanes)")
    ap.add_argument("--threads", type=int, default=1, help="LiteRT threads per lane")
    ap.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="busapp-bench-") as tmp:
        folder, out = Path(tmp, "in"), Path(tmp, "out")
        for i, src in enumerate(source_images(args.n)):
            dst = folder / f"d{i % 5}" / f"{i:04d}{src.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        predictor = lane_predictors(lanes=args.lanes, num_threads=args.threads)
        for p in predictor:
            p.predict(__import__("numpy").zeros((64, 64), "uint8"))  # warm-up outside the timing
        prof = cProfile.Profile() if args.profile else None
        t = time.perf_counter()
        if prof:
            prof.enable()
        result = run_batch(folder, out, predictor)
        if prof:
            prof.disable()
        dt = time.perf_counter() - t
        rate = result.analysed / dt
        print(
            f"batch: {result.analysed} images in {dt:.2f} s = {rate:.1f} images/s "
            f"(target >= {TARGET:.0f}/s: {'met' if rate >= TARGET else 'NOT met'}); failed {result.failed}"
        )
        t = time.perf_counter()
        again = run_batch(folder, out, predictor)
        print(f"resume with everything done: {again.skipped} skipped in {time.perf_counter() - t:.2f} s")
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
