"""Temperature and outline rule chosen on out-of-fold outputs (numpy only: no TensorFlow)."""

import numpy as np
import pytest

from busapp.training.calibration import fit_temperature
from busapp.training.crossval import report, softmax
from busapp.training.outline_rules import SUPPRESS_CANDIDATES, pick_mask_rule


def test_temperature_recovers_the_generating_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 3))
    p = softmax(logits / 1.7)
    y = (p.cumsum(axis=1) < rng.random((len(p), 1))).sum(axis=1)
    assert fit_temperature(logits, y) == pytest.approx(1.7, rel=0.08)


def test_outline_rule_prefers_fewer_outlined_normals_within_the_dice_tolerance_then_the_simpler_rule():
    rows = [{"suppress_mask_when_normal": w, "suppress_mask_when_normal_at_least": a, "dice": d, "rate": r}
            for (w, a), d, r in zip(SUPPRESS_CANDIDATES, (0.80, 0.80, 0.795, 0.79, 0.70, 0.60),
                                    (0.3, 0.2, 0.2, 0.1, 0.0, 0.0), strict=True)]
    assert pick_mask_rule(rows, "dice", "rate") == {"suppress_mask_when_normal": False,
                                                    "suppress_mask_when_normal_at_least": 0.4}
    for r in rows[1:]:
        r["rate"] = 0.2  # a tie among the rest: the simplest wins
    assert pick_mask_rule(rows, "dice", "rate")["suppress_mask_when_normal"] is True  # the simplest of the ties


def _square(n: int, at: tuple[int, int], side: int) -> np.ndarray:
    m = np.zeros((n, n), bool)
    m[at[0] : at[0] + side, at[1] : at[1] + side] = True
    return m


def test_report_withholds_outlines_of_confident_normals_when_it_costs_no_dice():
    n, truth = 16, _square(16, (4, 4), 6)
    blob = np.where(_square(16, (1, 1), 3), 4.0, -4.0)  # a false outline on each normal image
    lesion = np.where(truth, 4.0, -4.0)
    k_lesion, k_normal = 12, 6
    oof = {"mask": np.stack([lesion] * k_lesion + [blob] * k_normal),
           "truth": np.stack([truth] * k_lesion + [np.zeros((n, n), bool)] * k_normal),
           "y": np.array([1, 2] * (k_lesion // 2) + [0] * k_normal),
           # the classifier is sure on every image: normal images get p(normal) ~ 1
           "logits": np.array([[-5.0, 5.0, 0.0], [-5.0, 0.0, 5.0]] * (k_lesion // 2) + [[5.0, -5.0, -5.0]] * k_normal),
           "fold": np.arange(k_lesion + k_normal) % 3}
    rep = report(oof)
    assert rep["figures_without_outline_rule"]["normal_nonempty_mask_rate"] == 1.0
    assert rep["figures"]["normal_nonempty_mask_rate"] == 0.0 and rep["figures"]["dice_mean"] == pytest.approx(1.0)
    assert rep["outline_rule"] in rep["outline_rules"] and rep["outline_rule"]["suppress_mask_when_normal"] is True
    assert rep["temperature"] > 0 and [f["fold"] for f in rep["per_fold"]] == [0, 1, 2]
