"""Leave-one-site-out training: busnet 2's gate.

For each site, a run trains on the development images (train + val) of the other sites and never
sees the held-out one; its predictions on that site are what every selection decision (threshold,
calibration, second stage) is judged on. A last run trains on every site's development images:
that is the shipped network. Test splits are never trained on by any run.

    busapp-train loso-fit --held-out bus_uclm --work-dir build/loso/bus_uclm
    busapp-train loso-fit --work-dir build/loso/all          # every site: the shipped network
    scripts/loso_round.sh R1                                 # a whole round, the gate, the release

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
    # Round 3 (docs/busnet2-plan.md): R3 with synthetic burned-in marks and normal images twice.
    "R5": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2),
    # Round 4: R5 trained twice as long (R4's 24 epochs, never trained): heavier augmentation, more epochs.
    "R6": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2, epochs=24),
    # Round 5: R5 with one lever aimed at the scanner itself. R7: MixStyle in the encoder;
    # R8: every training site as many images as the largest.
    "R7": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2, mixstyle=True),
    "R8": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2, site_balance=True),
    # Round 6: R8's site balance with R6's 24 epochs (each of the two gained alone).
    "R9": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2, epochs=24,
                  site_balance=True),
    # Round 7: R8 again with another seed (weights' start, order, augmentation, the balance's draw),
    # to measure how far one run's gate score moves by chance.
    "R10": replace(SITE_RECIPE, size=256, augment="domain_marks", normal_oversample=2, site_balance=True,
                   seed=20261204),
}
# Round 8: R6 (busnet 2.3.0's recipe, its seed) trained again, to measure how far a rerun of the
# shipped recipe moves and to give the shipped network's recipe image-alone held-out outputs;
# R12: R6 with round 7's other seed, the shipped recipe's seed spread.
RECIPES["R11"] = RECIPES["R6"]
RECIPES["R12"] = replace(RECIPES["R6"], seed=20261204)
# Round 9: R6 with the encoder frozen through its stride-8 stage (blocks 0-4, against 0-2): fine-tuning
# an ImageNet encoder end to end distorts the features that carry over to new domains (Kumar et al.,
# ICLR 2022), and the frozen high-resolution blocks need no backward pass. Two seeds (R13, R14).
RECIPES["R13"] = replace(RECIPES["R6"], frozen_blocks=4)
RECIPES["R14"] = replace(RECIPES["R13"], seed=20261204)


def development_records(sites: tuple[str, ...], data_root: Path, split_file: Path = SPLIT_FILE) -> list[Record]:
    """Train + val images of ``sites``: what a run may learn from."""
    return [r for s in ("train", "val") for r in records_for(s, data_root, split_file, sites)]


def training_sites(held_out: str | None) -> tuple[str, ...]:
    if held_out is not None and held_out not in SITES:
        raise ValueError(f"unknown site {held_out!r}; one of {', '.join(SITES)}")
    return tuple(s for s in SITES if s != held_out)


def loso_fit(held_out: str | None, data_root: Path, work_dir: Path, cfg: FitConfig = SITE_RECIPE,
             split_file: Path = SPLIT_FILE, limit: int = 0, run_eagerly: bool = False):
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
    return fit(records, [], data_root, work_dir, cfg, run_eagerly=run_eagerly)
