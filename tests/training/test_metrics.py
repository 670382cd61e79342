import numpy as np
import pytest

from busapp.training.metrics import auc, bootstrap_ci, dice_iou, expected_calibration_error, macro_f1


def test_auc_perfect_reversed_and_ties():
    s = np.array([0.1, 0.2, 0.8, 0.9])
    pos = np.array([False, False, True, True])
    assert auc(s, pos) == 1.0
    assert auc(-s, pos) == 0.0
    assert auc(np.ones(4), pos) == 0.5
    assert auc(np.array([0.1, 0.6, 0.5, 0.9]), pos) == pytest.approx(0.75)


def test_dice_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, 2:7] = True
    d, j = dice_iou(a, b)
    assert d == pytest.approx(0.6) and j == pytest.approx(30 / 70)


def test_macro_f1_and_ece():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert macro_f1(y, y) == 1.0
    assert macro_f1(y, np.array([0, 0, 1, 1, 1, 1])) == pytest.approx((1 + 2 / 3 + 0) / 3)
    probs = np.array([[0.9, 0.05, 0.05]] * 10)
    yy = np.array([0] * 9 + [1])
    assert expected_calibration_error(probs, yy) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(probs, np.ones(10, int)) == pytest.approx(0.9)


def test_bootstrap_interval_contains_point_and_is_by_group():
    rng = np.random.default_rng(1)
    values = rng.normal(size=200)
    groups = [f"g{i // 2}" for i in range(200)]
    ci = bootstrap_ci(groups, lambda idx: {"mean": float(values[idx].mean())}, n_boot=300)
    lo, hi = ci["mean"]
    assert lo < values.mean() < hi
    assert hi - lo < 0.6
