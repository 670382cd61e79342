"""Agreement of busapp.core.descriptors with the radiologists' BI-RADS descriptors of BrEaST-Lesions-USG.

Features are computed on each lesion's ground-truth outline (the radiologists' own mask). Lesions
are split in two halves by their duplicate group (a stable hash, so near-duplicates stay
together): thresholds are chosen on the development half, agreement (Cohen's kappa, accuracy) is
reported on the held-out half, and on all lesions for reference.

    python scripts/validate_descriptors.py [--features cache.json] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from busapp.core.descriptors import classify, cohen_kappa, outline_features

SITE = "breast_lesions_usg"


def reference(row: dict[str, str]) -> dict[str, str | None]:
    """The radiologists' descriptors, mapped onto the categories busapp derives."""
    margin = row["margin"]
    echo = row["echogenicity"]
    post = row["posterior_features"]
    return {
        "shape": row["shape"] if row["shape"] in ("oval", "round", "irregular") else None,
        "margin": ("circumscribed" if margin == "circumscribed"
                   else "not circumscribed" if margin.startswith("not circumscribed") else None),
        "echo_pattern": echo if echo in ("anechoic", "hypoechoic", "isoechoic", "hyperechoic", "heterogeneous")
        else None,  # "complex cystic/solid" has no counterpart here
        "posterior_features": {"no": "no posterior features", "shadowing": "shadowing",
                               "enhancement": "enhancement"}.get(post),  # "combined": not derived
        "orientation": None,  # not in the manifest
    }


def half(row: dict[str, str]) -> str:
    h = hashlib.sha256((row["dup_group"] or row["id"]).encode()).digest()[0]
    return "dev" if h % 2 == 0 else "test"


def load_features(root: Path, cache: Path | None) -> list[dict]:
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    out = []
    for row in csv.DictReader(open(root / "manifest.csv", encoding="utf-8")):
        if row["label"] == "normal" or not row["masks"]:
            continue
        img = np.asarray(Image.open(root / row["image"]).convert("L"))
        mask = np.asarray(Image.open(root / row["masks"].split(";")[0]).convert("L")) > 127
        if mask.shape != img.shape:
            continue
        f = outline_features(img, mask)
        if f is not None:
            out.append({"id": row["id"], "half": half(row), "ref": reference(row), "f": f})
    if cache is not None:
        cache.write_text(json.dumps(out))
    return out


def agreement(items: list[dict], key: str) -> tuple[float, float, int] | None:
    pairs = [(it["ref"][key], classify(it["f"])[key]) for it in items if it["ref"][key] is not None]
    pairs = [(r, p) for r, p in pairs if p != "not assessable"]
    if not pairs:
        return None
    ref, pred = [r for r, _ in pairs], [p for _, p in pairs]
    acc = float(np.mean([r == p for r, p in pairs]))
    return cohen_kappa(ref, pred), acc, len(pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--features", type=Path, default=None, help="cache of computed features (JSON)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    if a.root is None:
        from busapp.training.data import default_data_root

        a.root = default_data_root() / SITE
    items = load_features(a.root, a.features)
    keys = ("shape", "orientation", "margin", "echo_pattern", "posterior_features")
    rows = []
    for k in keys:
        rows.append((k, agreement([i for i in items if i["half"] == "dev"], k),
                     agreement([i for i in items if i["half"] == "test"], k), agreement(items, k)))
    if a.markdown:
        print("| descriptor | development half: kappa / accuracy / n | held-out half: kappa / accuracy / n "
              "| all: kappa / accuracy / n |")
        print("| --- | --- | --- | --- |")

    def cell(x):
        return "no reference" if x is None else f"{x[0]:.2f} / {x[1] * 100:.0f} % / {x[2]}"

    for k, dev, test, both in rows:
        if a.markdown:
            print(f"| {k.replace('_', ' ')} | {cell(dev)} | {cell(test)} | {cell(both)} |")
        else:
            print(f"{k:20s} dev {cell(dev):24s} test {cell(test):24s} all {cell(both)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
