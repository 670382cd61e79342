"""Inference speed of the shipped model through LiteRT on this machine, quiet and under contention.

1. Thread count (issue 27): the model alone (both tasks, one forward pass) with LiteRT's
   ``num_threads`` 1 and 2 (``--thread-counts``), each measured on the machine as it is ("quiet":
   no load of ours) and while a child process keeps one core busy (a Python busy loop, started and
   stopped here). The conditions alternate in short rounds so that a background load that drifts
   (a training job) affects them alike. It prints each median, the slow-down under contention, and
   the thread count that is best under both: the one whose worst ratio to the fastest count of each
   condition is smallest (the Predictor's default, busapp.core.predictor.DEFAULT_NUM_THREADS).
2. The whole ``Predictor.predict`` call (preprocessing, model, mask back to the image size) with
   ``--threads`` (default: the Predictor's default), on real images.

Run: .venv/bin/python benchmarks/bench_inference.py [--repeats 6] [--rounds 4] [--cpus 0,1] [--bundle DIR] [IMAGES]
(~5 s on a quiet 2-core machine, ~40 s beside a training job). The load average printed first says how quiet "quiet" was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from busapp.core.imageio import load_image
from busapp.core.predictor import DEFAULT_NUM_THREADS, Predictor
from busapp.core.preprocess import preprocess

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ("quiet", "one core busy")


def _summary(seconds: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[0], ms[int(0.9 * (len(ms) - 1))]


def _stats(name: str, seconds: list[float]) -> None:
    med, lo, p90 = _summary(seconds)
    print(f"{name:40s} median {med:6.1f} ms   min {lo:6.1f}   p90 {p90:6.1f}   (n={len(seconds)})")


class BusyCore:
    """A child process spinning in a loop: another program keeping one core busy."""

    def __enter__(self) -> BusyCore:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let the scheduler see it
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def time_runs(predictor: Predictor, inputs: list[np.ndarray], n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        predictor.run(inputs[i % len(inputs)])
        out.append(time.perf_counter() - t)
    return out


def best_thread_count(medians: dict[tuple[str, int], float], counts: list[int]) -> tuple[int, dict[int, float]]:
    """The count whose worst ratio to the fastest count of each condition is smallest (ties: fewer threads)."""
    worst = {}
    for n in counts:
        worst[n] = max(medians[c, n] / min(medians[c, m] for m in counts) for c in CONDITIONS)
    return min(counts, key=lambda n: (round(worst[n], 3), n)), worst


def compare_thread_counts(bundle: Path | None, inputs: list[np.ndarray], counts: list[int], repeats: int,
                          rounds: int) -> int:
    predictors = {n: Predictor(bundle, num_threads=n) for n in counts}
    for p in predictors.values():
        p.run(inputs[0])  # warm-up: the first call allocates
    times: dict[tuple[str, int], list[float]] = {(c, n): [] for c in CONDITIONS for n in counts}
    for r in range(rounds):
        for condition in CONDITIONS:
            order = counts if r % 2 == 0 else counts[::-1]
            if condition == "quiet":
                for n in order:
                    times[condition, n] += time_runs(predictors[n], inputs, repeats)
            else:
                with BusyCore():
                    for n in order:
                        times[condition, n] += time_runs(predictors[n], inputs, repeats)
    medians = {k: _summary(v)[0] for k, v in times.items()}
    print("model only (LiteRT, both tasks), per thread count and condition:")
    for n in counts:
        for c in CONDITIONS:
            _stats(f"  num_threads={n}, {c}", times[c, n])
        print(f"  num_threads={n}: one busy core makes it {medians[CONDITIONS[1], n] / medians['quiet', n]:.2f}x slower")
    best, worst = best_thread_count(medians, counts)
    ratios = ", ".join(f"{n} threads {worst[n]:.2f}x" for n in counts)
    print(f"best under both: num_threads={best} (worst ratio to the fastest of each condition: {ratios}); "
          f"Predictor default: {DEFAULT_NUM_THREADS}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=DEFAULT_NUM_THREADS, help="for the predict() figures")
    ap.add_argument("--thread-counts", default="1,2", help="LiteRT num_threads values to compare")
    ap.add_argument("--repeats", type=int, default=6, help="runs per thread count, condition and round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cpus", default=None,
                    help="pin this process and the busy child to these cores, e.g. 0,1 (a 2-core machine on a larger one)")
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle folder (default: the shipped one)")
    ap.add_argument("images", nargs="*", type=Path)
    args = ap.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})  # the busy child inherits it
    files = args.images or sorted((REPO / "resources" / "samples").glob("*.png"))
    images = [load_image(f).frame(0) for f in files]

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} CPUs, load average {load} (1/5/15 min) before the run: 'quiet' means no load of ours,"
          " not an idle machine")
    t = time.perf_counter()
    predictor = Predictor(args.bundle, num_threads=args.threads)
    print(f"model {predictor.bundle.name} {predictor.bundle.version}, input {predictor.bundle.input_size} px; "
          f"load + sha256 check {1000 * (time.perf_counter() - t):.0f} ms")
    inputs = [preprocess(im, predictor.bundle.input_size)[0] for im in images]

    counts = [int(c) for c in args.thread_counts.split(",")]
    compare_thread_counts(args.bundle, inputs, counts, args.repeats, args.rounds)

    predictor.run(inputs[0])
    model_t = time_runs(predictor, inputs, args.repeats * 3)
    full_t = []
    for i in range(args.repeats * 3):
        im = images[i % len(images)]
        t = time.perf_counter()
        predictor.predict(im)
        full_t.append(time.perf_counter() - t)
    sizes = ", ".join(f"{im.shape[1]}x{im.shape[0]}" for im in images[:4])
    print(f"with num_threads={args.threads}, quiet:")
    _stats("  model only (LiteRT, both tasks)", model_t)
    _stats("  predict() incl. pre/post-processing", full_t)
    print(f"images: {len(images)} ({sizes}{', ...' if len(images) > 4 else ''}); target: model <= 20 ms median")
    assert np.isfinite(model_t).all()


if __name__ == "__main__":
    main()
