"""A model bundle: a folder with the model files and ``card.json``, which travel together.

The card names every file with its sha256; loading verifies the runtime file against it so a
swapped, truncated or corrupt model is refused with a clear message instead of giving silently
wrong results.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from busapp.core.hashing import sha256_file

CARD_NAME = "card.json"
DEFAULT_BUNDLE_NAME = "busnet"


class ModelBundleError(Exception):
    """The model bundle is missing, incomplete or corrupt; the message is meant for a user."""


def models_dir() -> Path:
    """``models/`` of the source tree, or of the PyInstaller bundle when frozen."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models"
    return Path(__file__).resolve().parents[2] / "models"


def default_bundle_dir() -> Path:
    return models_dir() / DEFAULT_BUNDLE_NAME


@dataclass(frozen=True)
class ModelBundle:
    directory: Path
    card: dict[str, Any]

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.card["classes"])

    @property
    def input_size(self) -> int:
        return int(self.card["input"]["size"])

    @property
    def mask_threshold(self) -> float:
        return float(self.card["postprocessing"]["mask_threshold"])

    @property
    def min_area_fraction(self) -> float:
        return float(self.card["postprocessing"].get("min_area_fraction", 0.0))

    @property
    def mask_keep(self) -> str:
        """"all" regions over the threshold, or the "largest" one with its holes filled."""
        return str(self.card["postprocessing"].get("mask_keep", "all"))

    @property
    def suppress_mask_when_normal(self) -> bool:
        return bool(self.card["postprocessing"].get("suppress_mask_when_normal", False))

    @property
    def suppress_mask_when_normal_at_least(self) -> float | None:
        """No outline when p(normal) reaches this, whatever the top class (None: rule off)."""
        v = self.card["postprocessing"].get("suppress_mask_when_normal_at_least")
        return None if v is None else float(v)

    @property
    def low_confidence_below(self) -> float:
        return float(self.card["postprocessing"]["low_confidence_below"])

    def file(self, role: str) -> Path:
        return self.directory / self.card["files"][role]["path"]

    def verify(self, roles: tuple[str, ...] | None = None) -> None:
        """Check the sha256 of each file (by default: every file present; the runtime file must be)."""
        files = self.card["files"]
        for role in roles or tuple(files):
            path = self.file(role)
            if not path.exists():
                if role == "tflite":
                    raise ModelBundleError(f"The model file {path.name} is missing from {self.directory}.")
                continue
            if sha256_file(path) != files[role]["sha256"]:
                raise ModelBundleError(
                    f"The model file {path.name} does not match its model card (sha256 differs): "
                    "it may be corrupt or replaced. Reinstall busapp."
                )


MASK_KEEP = ("all", "largest")  # the card's postprocessing.mask_keep values


def load_bundle(directory: Path | None = None, verify: bool = True) -> ModelBundle:
    directory = Path(directory or default_bundle_dir())
    card_path = directory / CARD_NAME
    if not card_path.exists():
        raise ModelBundleError(f"No model found: {card_path} is missing.")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        for key in ("name", "version", "classes", "input", "files", "postprocessing"):
            card[key]
        card["files"]["tflite"]["sha256"]
        if card["postprocessing"].get("mask_keep", "all") not in MASK_KEEP:
            raise ValueError(f"unknown mask_keep {card['postprocessing']['mask_keep']!r}")
    except (ValueError, KeyError, TypeError) as e:
        raise ModelBundleError(f"The model card {card_path} is unreadable or incomplete ({e}).") from e
    bundle = ModelBundle(directory, card)
    if verify:
        bundle.verify(("tflite",))
    return bundle
