"""A model bundle: a folder with the model files and ``card.json``, which travel together.

The card names every file with its sha256; loading verifies the runtime file against it so a
swapped, truncated or corrupt model is refused with a clear message instead of giving silently
wrong results. The card's fields are checked and typed by ``busapp.core.model_card``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from busapp.core.hashing import sha256_file
from busapp.core.model_card import MASK_KEEP, RUNTIME_FILE, Decision, ModelCard

__all__ = ["CARD_NAME", "MASK_KEEP", "ModelBundle", "ModelBundleError", "ModelCard", "load_bundle", "read_card",
           "sha256_file"]

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
    """A bundle folder and its checked card. ``card`` is typed (``ModelCard``) and also reads as
    the JSON mapping, for display code that shows provenance fields."""

    directory: Path
    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def mask_threshold(self) -> float:
        return self.card.postprocessing.mask_threshold

    @property
    def min_area_fraction(self) -> float:
        return self.card.postprocessing.min_area_fraction

    @property
    def mask_keep(self) -> str:
        """"all" regions over the threshold, or the "largest" one with its holes filled."""
        return self.card.postprocessing.mask_keep

    @property
    def suppress_mask_when_normal(self) -> bool:
        return self.card.postprocessing.suppress_mask_when_normal

    @property
    def suppress_mask_when_normal_at_least(self) -> float | None:
        """No outline when p(normal) reaches this, whatever the top class (None: rule off)."""
        return self.card.postprocessing.suppress_mask_when_normal_at_least

    @property
    def low_confidence_below(self) -> float:
        return self.card.postprocessing.low_confidence_below

    @property
    def decision(self) -> Decision | None:
        """The validated p(malignant) threshold and bands, if the card ships them."""
        return self.card.decision

    def file(self, role: str) -> Path:
        return self.directory / self.card.files[role].path

    def verify(self, roles: tuple[str, ...] | None = None) -> None:
        """Check the sha256 of each file (by default: every file present; the runtime file must be)."""
        files = self.card.files
        for role in roles or tuple(files):
            path = self.file(role)
            if not path.exists():
                if role == RUNTIME_FILE:
                    raise ModelBundleError(f"The model file {path.name} is missing from {self.directory}.")
                continue
            if sha256_file(path) != files[role].sha256:
                raise ModelBundleError(
                    f"The model file {path.name} does not match its model card (sha256 differs): "
                    "it may be corrupt or replaced. Reinstall busapp."
                )


def read_card(card_path: Path) -> ModelCard:
    """Parse and check a ``card.json``; ``ModelBundleError`` says which file and why."""
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
        return ModelCard.from_dict(raw)
    except OSError as e:
        raise ModelBundleError(f"The model card {card_path} cannot be read ({e.strerror or e}).") from e
    except (ValueError, UnicodeDecodeError) as e:  # CardError and JSON errors are ValueErrors
        raise ModelBundleError(f"The model card {card_path} is unreadable or incomplete ({e}).") from e


def load_bundle(directory: Path | None = None, verify: bool = True) -> ModelBundle:
    directory = Path(directory or default_bundle_dir())
    card_path = directory / CARD_NAME
    if not card_path.exists():
        raise ModelBundleError(f"No model found: {card_path} is missing.")
    bundle = ModelBundle(directory, read_card(card_path))
    if verify:
        bundle.verify((RUNTIME_FILE,))
    return bundle
