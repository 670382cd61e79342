"""A model bundle with a "decision" block (contract 3), until busnet 2's card ships one: a copy
of models/busnet in a temporary folder, model files byte-identical (their sha256 still verify)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from busapp.core.model_bundle import default_bundle_dir

DECISION: dict[str, Any] = {
    "score": "p_malignant",
    "suspicious_threshold": 0.3,
    "bands": [
        {"name": "low suspicion", "from": 0.0, "to": 0.1,
         "meaning": "at this level fewer than 3 % of lesions were cancers at hospitals the model had not seen"},
        {"name": "intermediate", "from": 0.1, "to": 0.3,
         "meaning": "the model cannot tell; read the image as you would without it"},
        {"name": "suspicious for malignancy", "from": 0.3, "to": 1.0, "meaning": ""},
    ],
    "per_site": {
        "busi": {"sensitivity": {"value": 0.95, "ci95": [0.9, 0.98]},
                 "specificity": {"value": 0.6, "ci95": [0.52, 0.68]}, "n_malignant": 210, "n_benign": 437},
        "breast_lesions_usg": {"sensitivity": {"value": 0.93, "ci95": [0.87, 0.97]},
                               "specificity": {"value": 0.58, "ci95": [0.49, 0.66]},
                               "n_malignant": 98, "n_benign": 154},
        "bus_uclm": {"sensitivity": {"value": 0.92, "ci95": [0.85, 0.96]},
                     "specificity": {"value": 0.57, "ci95": [0.49, 0.64]}, "n_malignant": 90, "n_benign": 170},
    },
    "chosen_on": "leave-one-site-out predictions: the highest threshold with sensitivity >= 0.92 at every held-out site",
}


def bundle_with_decision(tmp_path: Path, decision: dict[str, Any] | None = None) -> Path:
    src = default_bundle_dir()
    dst = tmp_path / "busnet-decision"
    dst.mkdir()
    card = json.loads((src / "card.json").read_text(encoding="utf-8"))
    card["decision"] = decision or DECISION
    for role in card["files"].values():
        if (src / role["path"]).exists():
            (dst / role["path"]).symlink_to(src / role["path"])  # same bytes, no 58 MB copy
    (dst / "card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return dst


def fake_card(name: str = "fake", version: str = "0.1", sha256: str = "ab" * 32,
              decision: dict[str, Any] | None = None):
    """A typed card (``ModelCard``) for fake predictors: the shipped card's runtime fields, this
    name, version and model sha256, no second stage, and ``decision`` if given (else none)."""
    from busapp.core.model_card import ModelCard

    shipped = json.loads((default_bundle_dir() / "card.json").read_text(encoding="utf-8"))
    raw = {**{k: v for k, v in shipped.items() if k not in ("decision", "second_stage")},
           "name": name, "version": version, "files": {"tflite": {"path": f"{name}.tflite", "sha256": sha256}}}
    if decision is not None:
        raw["decision"] = decision
    return ModelCard.from_dict(raw)
