"""Calibration and mask post-processing chosen on out-of-fold outputs (numpy only: no TensorFlow)."""

import numpy as np
import pytest

from busapp.training.crossval import choose_calibration, choose_mask_postprocessing, postprocessed_masks, softmax
from busapp.training.finalize import fit_temperature_bias


def _labels_from(logits: np.ndarray, temperature: float, bias: np.ndarray, rng) -> np.ndarray:
    p = softmax(logits / temperature + bias)
    return (p.cumsum(axis=1) < rng.random((len(p), 1))).sum(axis=1)


def test_bias_corrected_temperature_scaling_recovers_the_generating_parameters():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 3))
    y = _labels_from(logits, 1.7, np.array([0.5, 0.0, -0.5]), rng)
    t, b = fit_temperature_bias(logits, y)
    assert t == pytest.approx(1.7, rel=0.08)
    assert np.allclose(b, [0.5, 0.0, -0.5], atol=0.1) and abs(sum(b)) < 1e-9  # centred


def test_a_class_bias_is_adopted_only_when_it_helps_on_held_out_folds():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (1200, 3))
    fold = np.arange(1200) % 4
    # Labels from unbiased logits: no bias can gain macro-F1 on folds it was not fitted on.
    fair = choose_calibration(logits, _labels_from(logits, 1.0, np.zeros(3), rng), fold)
    assert not fair["bias_adopted"] and fair["class_bias"] == [0.0, 0.0, 0.0]
    # A large prior shift the logits do not know about (class 0 under-called): the bias wins.
    shifted = choose_calibration(logits, _labels_from(logits, 1.0, np.array([1.5, 0.0, 0.0]), rng), fold)
    lofo = shifted["leave_one_fold_out"]
    assert shifted["bias_adopted"], lofo
    assert lofo["temperature_and_bias"]["macro_f1"] > lofo["temperature"]["macro_f1"]
    assert shifted["class_bias"][0] > shifted["class_bias"][1]


def _square(n: int, at: tuple[int, int], side: int) -> np.ndarray:
    m = np.zeros((n, n), bool)
    m[at[0] : at[0] + side, at[1] : at[1] + side] = True
    return m


def test_largest_region_is_adopted_when_stray_blobs_cost_dice():
    n, truth = 32, _square(32, (8, 8), 10)
    lesion_logits = np.where(truth | _square(32, (24, 24), 6), 4.0, -4.0)  # the lesion and a stray blob
    normal_logits = np.full((n, n), -4.0)
    mask = np.stack([lesion_logits] * 8 + [normal_logits] * 4)
    oof = {"mask": mask, "truth": np.stack([truth] * 8 + [np.zeros((n, n), bool)] * 4),
           "y": np.array([1] * 8 + [0] * 4), "fold": np.arange(12) % 4}
    chosen = choose_mask_postprocessing(oof)
    assert chosen["adopted"] and chosen["mask_keep"] == "largest"
    assert postprocessed_masks(mask[:1], 0.5, "largest")[0].sum() == truth.sum()

    # Clean masks: no candidate gains enough, the shipped setting stays.
    oof["mask"] = np.stack([np.where(truth, 4.0, -4.0)] * 8 + [normal_logits] * 4)
    kept = choose_mask_postprocessing(oof)
    assert not kept["adopted"] and (kept["mask_threshold"], kept["mask_keep"]) == (0.5, "all")


def test_a_gain_that_outlines_more_normal_images_is_refused():
    n, truth = 32, _square(32, (8, 8), 10)
    # Lesion probability 0.45 over the whole lesion: only thresholds under 0.45 find it; on the
    # normal images a faint 0.4 patch then becomes an outline.
    lesion_logits = np.where(truth, np.log(0.45 / 0.55), -4.0)
    normal_logits = np.where(_square(32, (2, 2), 4), np.log(0.42 / 0.58), -4.0)
    oof = {"mask": np.stack([lesion_logits] * 8 + [normal_logits] * 4),
           "truth": np.stack([truth] * 8 + [np.zeros((n, n), bool)] * 4),
           "y": np.array([1] * 8 + [0] * 4), "fold": np.arange(12) % 4}
    chosen = choose_mask_postprocessing(oof)
    assert not chosen["adopted"] and chosen["mask_threshold"] == 0.5
    assert max(r["dice_mean"] for r in chosen["candidates"]) == pytest.approx(1.0)
