"""busnet 2's second stage: the network's class log-probabilities and the outlined lesion's features
(``lesion_features``) -> calibrated class probabilities. Its weights live in the model card
(``second_stage``), fitted on leave-one-site-out predictions, so the runtime only multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from busapp.core.lesion_features import FEATURE_NAMES, lesion_features
from busapp.core.preprocess import INTENSITY_OFFSET, INTENSITY_SCALE, Letterbox


class SecondStageError(ValueError):
    """The card's second stage is malformed."""


@dataclass(frozen=True)
class SecondStage:
    inputs: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (len(inputs), n_classes)
    bias: np.ndarray

    @classmethod
    def from_card(cls, block: dict[str, Any], n_classes: int) -> SecondStage:
        try:
            inputs = tuple(block["inputs"])
            mean, scale = np.asarray(block["mean"], float), np.asarray(block["scale"], float)
            weights, bias = np.asarray(block["weights"], float), np.asarray(block["bias"], float)
        except (KeyError, TypeError, ValueError) as e:
            raise SecondStageError(f"second_stage is incomplete ({e})") from e
        known = {f"log_p_{i}" for i in range(n_classes)} | set(FEATURE_NAMES)
        unknown = [n for n in inputs if not (n.startswith("log_p_") or n in known)]
        if unknown or weights.shape != (len(inputs), n_classes) or mean.shape != scale.shape != (len(inputs),) \
                or bias.shape != (n_classes,) or len(mean) != len(inputs):
            raise SecondStageError(f"second_stage does not fit its inputs ({unknown or weights.shape})")
        return cls(inputs, mean, scale, weights, bias)

    @property
    def uses_features(self) -> bool:
        return any(n in FEATURE_NAMES for n in self.inputs)

    def probabilities(self, probs: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """Network probabilities (n_classes,) and lesion features -> second-stage probabilities."""
        log_p = np.log(np.maximum(np.asarray(probs, np.float64), 1e-12))
        x = log_p if features is None else np.concatenate([log_p, features])
        z = ((x[: len(self.inputs)] - self.mean) / self.scale) @ self.weights + self.bias
        z = np.exp(z - z.max())
        return z / z.sum()


def features_for(x: np.ndarray, mask_prob: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Lesion features from the model input (size, size, 1) scaled as ``preprocess`` does and the
    network's (size, size) lesion probability: the same numbers training computed."""
    u8 = np.rint(np.asarray(x)[..., 0] * INTENSITY_SCALE + INTENSITY_OFFSET)
    region = (lb.pad_y, lb.pad_y + lb.scaled_height, lb.pad_x, lb.pad_x + lb.scaled_width)
    return lesion_features(u8, mask_prob, region)
