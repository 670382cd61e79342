"""Train / validation / test split by duplicate group, stratified by label, written to a CSV.

Whole duplicate groups go to one split, so no near-duplicate of a test image is ever trained on.
Groups filed under more than one label (BUSI's cross-class duplicates) are label noise: we do not
know which label is right, so they are excluded from training, tuning and evaluation alike.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from pathlib import Path

from busapp.core.atomic import write_text_atomic
from busapp.training.data import PATIENT_GROUPED, SITES, SPLIT_FILE, Record, conflicting_groups, read_all

FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
SEED = 20261124


def _groups_by_stratum(records: list[Record]) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[Record]], set[str]]:
    """(dataset, label) -> its duplicate groups (sorted; noisy groups left out), group -> records,
    and the noisy (cross-class) groups."""
    noisy = conflicting_groups(records)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    members: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        members[r.group].append(r)
    for g in sorted(members):
        if g in noisy:
            continue
        first = members[g][0]
        groups[(first.dataset, first.label)].append(g)
    return groups, members, noisy


def make_folds(records: list[Record], n_folds: int, seed: int = SEED) -> dict[str, int]:
    """{record key: fold} for cross-validation over ``records`` (train + val): whole duplicate
    groups per fold, each (dataset, label) stratum spread evenly over the folds by image count.
    Deterministic for a given seed and record list."""
    groups, members, noisy = _groups_by_stratum(records)
    if noisy:
        raise ValueError(f"cross-class duplicate groups among the records: {sorted(noisy)[:3]}")
    rng = random.Random(seed)
    folds: dict[str, int] = {}
    for stratum in sorted(groups):
        gs = groups[stratum]
        rng.shuffle(gs)
        filled = [0] * n_folds
        for g in sorted(gs, key=lambda g: -len(members[g])):  # large groups first: even counts
            k = min(range(n_folds), key=lambda i: (filled[i], i))
            filled[k] += len(members[g])
            for r in members[g]:
                folds[r.key] = k
    return folds


def make_split(records: list[Record], seed: int = SEED) -> dict[str, str]:
    """{record key: split}. Deterministic for a given seed and manifest content."""
    groups, members, noisy = _groups_by_stratum(records)
    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for stratum in sorted(groups):
        gs = groups[stratum]
        rng.shuffle(gs)
        # Fill test and val to their share of *images* (groups differ in size), rest to train.
        total = sum(len(members[g]) for g in gs)
        target = {s: FRACTIONS[s] * total for s in ("test", "val")}
        filled = {"test": 0, "val": 0}
        for g in gs:
            n = len(members[g])
            split = "train"
            for s in ("test", "val"):
                if filled[s] + n / 2 <= target[s]:
                    split = s
                    filled[s] += n
                    break
            for r in members[g]:
                assignment[r.key] = split
    for g in noisy:
        for r in members[g]:
            assignment[r.key] = "excluded"
    return assignment


SEVERITY = ("normal", "benign", "malignant")


def make_patient_split(records: list[Record], seed: int = SEED) -> dict[str, str]:
    """{record key: split} for a data set whose groups are patients (BUS-UCLM): a patient's frames
    carry several labels, so whole patients are dealt out, stratified by their most severe label,
    to the same image shares as ``make_split``. Nothing is excluded: mixed labels are not noise here."""
    members: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        members[r.group].append(r)
    strata: dict[str, list[str]] = defaultdict(list)
    for g in sorted(members):
        strata[max((r.label for r in members[g]), key=SEVERITY.index)].append(g)
    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for stratum in SEVERITY:
        gs = strata.get(stratum, [])
        rng.shuffle(gs)
        total = sum(len(members[g]) for g in gs)
        filled = {"test": 0, "val": 0}
        for g in gs:
            n = len(members[g])
            split = "train"
            for s in ("test", "val"):
                if filled[s] + n / 2 <= FRACTIONS[s] * total:
                    split = s
                    filled[s] += n
                    break
            for r in members[g]:
                assignment[r.key] = split
    return assignment


def make_site_split(records: list[Record], seed: int = SEED) -> dict[str, str]:
    """The committed split over every site: busnet 1.x's two data sets exactly as before (their
    test images stay the same), patient-grouped sites by patient."""
    legacy = [r for r in records if r.dataset not in PATIENT_GROUPED]
    out = make_split(legacy, seed)
    for d in PATIENT_GROUPED:
        out.update(make_patient_split([r for r in records if r.dataset == d], seed))
    return out


def write_split(assignment: dict[str, str], records: list[Record], path: Path = SPLIT_FILE) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)  # default \r\n line ends, as the committed file (its sha256 is in the card)
    w.writerow(["dataset", "id", "label", "dup_group", "split"])
    for r in sorted(records, key=lambda r: r.key):
        w.writerow([r.dataset, r.id, r.label, r.group.split(":", 1)[1], assignment[r.key]])
    write_text_atomic(path, buf.getvalue())


def main(out: Path = SPLIT_FILE) -> dict[str, str]:
    records = read_all(datasets=SITES)
    assignment = make_site_split(records)
    write_split(assignment, records, out)
    return assignment
