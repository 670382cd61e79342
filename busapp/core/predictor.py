"""Run a model bundle with LiteRT: one image in, class probabilities and a lesion mask out.

No TensorFlow, no Qt: the GUI worker, ``busapp-cli`` and the tests all call ``Predictor.predict``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from busapp.core.measure import largest_component
from busapp.core.model_bundle import ModelBundle, ModelBundleError, load_bundle
from busapp.core.preprocess import Letterbox, mask_from_output, preprocess
from busapp.core.second_stage import SecondStage, SecondStageError, features_for


def is_confident_normal(probs: np.ndarray, classes: tuple[str, ...], low_confidence_below: float) -> bool:
    """Top class "normal" and not a low-confidence result: the case in which a card may ask for
    no outline (``suppress_mask_when_normal``)."""
    k = int(np.argmax(probs))
    return classes[k] == "normal" and float(probs[k]) >= low_confidence_below


def outline_suppressed(
    probs: np.ndarray, classes: tuple[str, ...], low_confidence_below: float,
    when_normal: bool, when_normal_at_least: float | None,
) -> str | None:
    """Why the card's rules withhold the outline on this image, in words for the user; None if
    they do not. Either rule is chosen on validation images at training time."""
    p_normal = float(probs[classes.index("normal")])
    if when_normal and is_confident_normal(probs, classes, low_confidence_below):
        return "No outline: the model suggests normal."
    if when_normal_at_least is not None and p_normal >= when_normal_at_least:
        return (f"No outline: the model gives normal a probability of {p_normal:.2f} (outlines are "
                f"withheld from {when_normal_at_least:.2f}), so an outline would not be reliable.")
    return None


def region_share(prob: np.ndarray, lb: Letterbox, threshold: float) -> float:
    """Share of the letterboxed image (model resolution) at or over the mask threshold: what the
    card's ``min_area_fraction`` is compared with."""
    region = prob[lb.pad_y : lb.pad_y + lb.scaled_height, lb.pad_x : lb.pad_x + lb.scaled_width]
    return float((region >= threshold).mean())


def too_small_note(share: float, min_area_fraction: float) -> str | None:
    """Why a region the model did mark gets no outline (the card's minimum outline area)."""
    if 0 < share < min_area_fraction:
        return (f"No outline: the model marked a region covering {100 * share:.2f} % of the image, below this "
                f"model's smallest outline ({100 * min_area_fraction:.2f} %), where its outlines were mostly noise.")
    return None


def lesion_mask(
    prob: np.ndarray, lb: Letterbox, threshold: float, min_area_fraction: float, suppressed: bool = False,
    keep: str = "all",
) -> np.ndarray:
    """Model probability map -> bool mask at the original size.

    A mask covering less than ``min_area_fraction`` of the image is dropped as noise, and so is
    any outline the card's rules withhold (``outline_suppressed``: the classifier calls the image
    normal, or gives normal enough probability). With ``keep="largest"`` only the largest
    8-connected region is outlined, holes filled. The rules are chosen at training time (on
    validation or cross-validation outputs) and stored in the model card.
    """
    if suppressed:
        return np.zeros((lb.src_height, lb.src_width), bool)
    if min_area_fraction > 0 and region_share(prob, lb, threshold) < min_area_fraction:
        return np.zeros((lb.src_height, lb.src_width), bool)
    mask = mask_from_output(prob, lb, threshold)
    return largest_component(mask) if keep == "largest" else mask


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    mask: np.ndarray = field(repr=False)  # bool, the size of the input image
    model_name: str
    model_version: str
    low_confidence: bool
    outline_note: str | None = None  # why no outline is shown although the model may see a region
    mask_one_region: bool = False  # the mask is one 8-connected region, holes filled (or empty)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def headline(self) -> str:
        """The result in words that do not overstate, the same in the app and the report."""
        if self.low_confidence:
            return f"Uncertain \u2013 leans {self.label} ({self.confidence:.2f})"
        return f"Suggests {self.label}, {self.confidence:.2f}"

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "low_confidence": self.low_confidence,
            **({"outline_note": self.outline_note} if self.outline_note else {}),
            "model": {"name": self.model_name, "version": self.model_version},
        }


# LiteRT threads per interpreter: benchmarks/bench_inference.py measures 1 and 2, quiet and with
# another process keeping one core busy, and names the best under both.
DEFAULT_NUM_THREADS = 2


class Predictor:
    """Owns one LiteRT interpreter. Not thread-safe across calls: one predictor per worker."""

    def __init__(self, bundle_dir: Path | None = None, num_threads: int = DEFAULT_NUM_THREADS, verify: bool = True) -> None:
        self.bundle: ModelBundle = load_bundle(bundle_dir, verify=verify)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:  # pragma: no cover - packaging error
            raise ModelBundleError("The LiteRT runtime (ai-edge-litert) is not installed.") from e
        try:
            self._interpreter = Interpreter(model_path=str(self.bundle.file("tflite")), num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            raise ModelBundleError(f"The model file could not be loaded by LiteRT ({e}).") from e
        self._lock = threading.Lock()
        block = self.bundle.card.get("second_stage")
        try:
            self._second_stage = SecondStage.from_card(block, len(self.bundle.classes)) if block else None
        except SecondStageError as e:
            raise ModelBundleError(f"The model card's {e}.") from e

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model input (size, size, 1) float32 -> (mask probability (size, size), class probabilities (3,))."""
        with self._lock:
            out = self._runner(image=np.ascontiguousarray(x[None], np.float32))
        return out["mask"][0, :, :, 0].copy(), out["probs"][0].copy()

    def predict(self, image: np.ndarray) -> Prediction:
        """A decoded image (2-D grey or HxWx3/4 colour, any bit depth) -> Prediction."""
        b = self.bundle
        x, lb = preprocess(image, b.input_size)
        mask_prob, probs = self.run(x)
        probs = probs.astype(float)
        if self._second_stage is not None:  # busnet 2: network + outline features -> calibrated probabilities
            feats = features_for(x, mask_prob, lb) if self._second_stage.uses_features else None
            probs = self._second_stage.probabilities(probs, feats)
        k = int(np.argmax(probs))
        note = outline_suppressed(probs, b.classes, b.low_confidence_below,
                                  b.suppress_mask_when_normal, b.suppress_mask_when_normal_at_least)
        if note is None and b.min_area_fraction > 0:
            note = too_small_note(region_share(mask_prob, lb, b.mask_threshold), b.min_area_fraction)
        return Prediction(
            label=b.classes[k],
            probabilities={c: float(p) for c, p in zip(b.classes, probs, strict=True)},
            mask=lesion_mask(mask_prob, lb, b.mask_threshold, b.min_area_fraction, note is not None, b.mask_keep),
            mask_one_region=note is not None or b.mask_keep == "largest",
            model_name=b.name,
            model_version=b.version,
            low_confidence=bool(probs[k] < b.low_confidence_below),
            outline_note=note,
        )
