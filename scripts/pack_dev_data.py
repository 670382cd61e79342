"""A packed copy of the training data's train + val records, for training on a lent GPU machine.

    python scripts/pack_dev_data.py OUT_DIR [--size 256] [--data DATASETS_DIR]

The device machine gets a 64 MiB working tree; the data sets are ~130 MB, and even as 8-bit
grey PNGs their train + val images take ~100 MB. The pack holds what training reads instead:
each image's letterboxed uint8 input at one size (as a PNG), its bit-packed mask, its size and
its full-size mask as runs, with the manifests (31.4 MiB at 256 px for every site).
``busapp-train fit``, ``loso-fit``, ``cv-report`` and ``loso_eval predict`` take it as ``--data``
and get the same arrays as from the images (checked here). Test images are left out: they stay
on this machine, where ``finalize`` measures the bundle.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from busapp.training.data import SITES, default_data_root, records_for
from busapp.training.dataset import build_arrays, pack_arrays


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--data", type=Path, default=None)
    args = p.parse_args()
    root = args.data or default_data_root()
    # Every site's development images: busnet 1.x's cross-validation reads two of them, busnet 2's
    # leave-one-site-out runs train on two and predict the third.
    records = records_for("train", root, datasets=SITES) + records_for("val", root, datasets=SITES)
    path = pack_arrays(root, records, args.size, args.out)
    check = records[:: max(1, len(records) // 40)]  # every ~40th record: the pack loads as the images do
    for a, b in zip(build_arrays(args.out, check, args.size), build_arrays(root, check, args.size), strict=True):
        if not np.array_equal(a, b):
            raise SystemExit("the packed arrays differ from the images' arrays")
    print(f"{len(records)} records, {path.stat().st_size / 2**20:.1f} MiB in {path}")


if __name__ == "__main__":
    main()
