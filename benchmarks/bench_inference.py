"""Inference speed of the shipped model through LiteRT on this machine.

Prints the median and spread of (a) the model alone (both tasks, one forward pass) and (b) the
whole ``Predictor.predict`` call (preprocessing, model, mask back to the image size), on real
images. Run: .venv/bin/python benchmarks/bench_inference.py [--threads 2] [--repeats 50] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from busapp.core.imageio import load_image
from busapp.core.predictor import Predictor
from busapp.core.preprocess import preprocess

REPO = Path(__file__).resolve().parents[1]


def _stats(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"{name:34s} median {statistics.median(ms):6.1f} ms   min {ms[0]:6.1f}   p90 {p90:6.1f}   (n={len(ms)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle folder (default: the shipped one)")
    ap.add_argument("images", nargs="*", type=Path)
    args = ap.parse_args()
    files = args.images or sorted((REPO / "resources" / "samples").glob("*.png"))
    images = [load_image(f).frame(0) for f in files]

    t = time.perf_counter()
    predictor = Predictor(args.bundle, num_threads=args.threads)
    print(f"model {predictor.bundle.name} {predictor.bundle.version}, input {predictor.bundle.input_size} px, "
          f"{args.threads} threads; load + sha256 check {1000 * (time.perf_counter() - t):.0f} ms")
    inputs = [preprocess(im, predictor.bundle.input_size)[0] for im in images]
    predictor.run(inputs[0])  # warm-up: first call allocates

    model_t, full_t = [], []
    for i in range(args.repeats):
        x = inputs[i % len(inputs)]
        t = time.perf_counter()
        predictor.run(x)
        model_t.append(time.perf_counter() - t)
    for i in range(args.repeats):
        im = images[i % len(images)]
        t = time.perf_counter()
        predictor.predict(im)
        full_t.append(time.perf_counter() - t)
    sizes = ", ".join(f"{im.shape[1]}x{im.shape[0]}" for im in images[:4])
    _stats("model only (LiteRT, both tasks)", model_t)
    _stats("predict() incl. pre/post-processing", full_t)
    print(f"images: {len(images)} ({sizes}{', ...' if len(images) > 4 else ''}); target: model <= 40 ms median")
    assert np.isfinite(model_t).all()


if __name__ == "__main__":
    main()
