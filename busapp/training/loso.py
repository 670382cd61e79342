"""Leave-one-site-out training: busnet 2's gate.

For each site, a run trains on the development images (train + val) of the other sites and never
sees the held-out one; its predictions on that site are what every selection decision (threshold,
calibration, second stage) is judged on. A last run trains on every site's development images:
that is the shipped network. Test splits are never trained on by any run.

    busapp-train loso-fit --held-out bus_uclm --work-dir build/loso/out-bus_uclm
    busapp-train loso-fit --work-dir build/loso/all          # every site: the shipped network

Runs resume from their checkpoints (``fit``'s BackupAndRestore), so a new session picks up where
an interrupted one stopped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from busapp.training.data import SITES, SPLIT_FILE, Record, records_for
from busapp.training.fit import FitConfig

# The one recipe of busnet 2, fixed before any leave-one-site-out figure existed (docs/model-history.md):
# 192 px and two frozen encoder blocks to fit four runs in one session on a 2-core CPU; the domain
# augmentation, which gained most across sites in the 1.5.0 cross-site check; the lesion-pooled
# classifier, which looks at the tissue under the outline rather than the whole frame.
SITE_RECIPE = FitConfig(size=192, epochs=12, frozen_blocks=2, augment="domain", lesion_pool=True, seed=20261201)
# The round's candidates (docs/busnet2-plan.md), each judged by the leave-one-site-out gate.
RECIPES = {
    "R1": SITE_RECIPE,
    "R2": replace(SITE_RECIPE, lesion_pool=False),
    "R3": replace(SITE_RECIPE, size=256),
    "R4": replace(SITE_RECIPE, epochs=24),
}


def development_records(sites: tuple[str, ...], data_root: Path, split_file: Path = SPLIT_FILE) -> list[Record]:
    """Train + val images of ``sites``: what a run may learn from."""
    return [r for s in ("train", "val") for r in records_for(s, data_root, split_file, sites)]


def training_sites(held_out: str | None) -> tuple[str, ...]:
    if held_out is not None and held_out not in SITES:
        raise ValueError(f"unknown site {held_out!r}; one of {', '.join(SITES)}")
    return tuple(s for s in SITES if s != held_out)


def loso_fit(held_out: str | None, data_root: Path, work_dir: Path, cfg: FitConfig = SITE_RECIPE,
             split_file: Path = SPLIT_FILE, limit: int = 0):
    """Train one leave-one-site-out run (``held_out=None``: every site). Keeps the last epoch: the
    recipe is fixed beforehand and no held-out image may choose a checkpoint."""
    import json

    from busapp.training.fit import fit

    sites = training_sites(held_out)
    records = development_records(sites, data_root, split_file)
    if limit:
        records = records[:limit]
    cfg = replace(cfg, datasets=sites)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "loso.json").write_text(json.dumps({"held_out": held_out, "sites": list(sites)}))
    return fit(records, [], data_root, work_dir, cfg)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    from busapp.training.data import default_data_root

    p = argparse.ArgumentParser(prog="busapp-train loso-fit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--held-out", choices=SITES, default=None, help="the site this run never sees (default: none)")
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--recipe", choices=RECIPES, default="R1")
    p.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (smoke tests)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images (smoke tests)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    from busapp.training.cli import _setup_logging

    _setup_logging(args.work_dir)
    loso_fit(args.held_out, args.data or default_data_root(), args.work_dir,
             replace(RECIPES[args.recipe], epochs=args.epochs or RECIPES[args.recipe].epochs), limit=args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
