"""The training data: the manifests in ``../shared/datasets/``, the committed split, and loaders.

Plain numpy/Pillow: the evaluation in CI reads the same records without TensorFlow.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("normal", "benign", "malignant")
DATASETS = ("busi", "breast_lesions_usg")  # busnet 1.x's two sites
# Every site, for busnet 2's leave-one-site-out training. BUS-UCLM's duplicate groups are patients
# (frames of one breast), which legitimately hold several labels: see split.make_patient_split.
SITES = (*DATASETS, "bus_uclm")
PATIENT_GROUPED = ("bus_uclm",)
SPLIT_FILE = Path(__file__).with_name("split.csv")
SPLITS = ("train", "val", "test")


def default_data_root() -> Path:
    """``$BUSAPP_DATA`` or the ``shared/datasets`` folder beside the repository."""
    env = os.environ.get("BUSAPP_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Record:
    dataset: str
    id: str
    label: str
    image: str  # relative to the dataset folder
    masks: tuple[str, ...]
    group: str  # dataset-qualified duplicate group: "busi:g0042"
    pixel_size_cm: float | None = None

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.id}"

    @property
    def label_index(self) -> int:
        return CLASSES.index(self.label)


def read_manifest(data_root: Path, dataset: str) -> list[Record]:
    out = []
    with open(data_root / dataset / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            px = row.get("pixel_size_cm") or ""
            out.append(
                Record(
                    dataset=dataset,
                    id=row["id"],
                    label=row["label"],
                    image=row["image"],
                    masks=tuple(m for m in row["masks"].split(";") if m),
                    group=f"{dataset}:{row['dup_group']}",
                    pixel_size_cm=float(px) if px else None,
                )
            )
    return out


def read_all(data_root: Path | None = None, datasets: tuple[str, ...] = DATASETS) -> list[Record]:
    root = data_root or default_data_root()
    return [r for d in datasets for r in read_manifest(root, d)]


def conflicting_groups(records: Iterable[Record]) -> set[str]:
    """Duplicate groups whose images are filed under more than one label: label noise."""
    labels: dict[str, set[str]] = {}
    for r in records:
        labels.setdefault(r.group, set()).add(r.label)
    return {g for g, ls in labels.items() if len(ls) > 1}


def read_split(path: Path = SPLIT_FILE) -> dict[str, str]:
    """{record key: "train" | "val" | "test" | "excluded"}."""
    with open(path, newline="") as f:
        return {f"{r['dataset']}/{r['id']}": r["split"] for r in csv.DictReader(f)}


def records_for(split: str, data_root: Path | None = None, split_path: Path = SPLIT_FILE,
                datasets: tuple[str, ...] = DATASETS) -> list[Record]:
    assignment = read_split(split_path)
    return [r for r in read_all(data_root, datasets) if assignment.get(r.key) == split]


def load_image(data_root: Path, rec: Record) -> np.ndarray:
    with Image.open(data_root / rec.dataset / rec.image) as im:
        return np.asarray(im.convert("L"))


def load_mask(data_root: Path, rec: Record, shape: tuple[int, int]) -> np.ndarray:
    """Union of the record's lesion masks (bool); all False for normal images."""
    mask = np.zeros(shape, bool)
    for m in rec.masks:
        with Image.open(data_root / rec.dataset / m) as im:
            mask |= np.asarray(im.convert("L")) > 127
    return mask
