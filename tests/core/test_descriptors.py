"""BI-RADS descriptors from outline and image: the rules on synthetic lesions, Cohen's kappa, and the
published agreement figures reproduced from the data set (skipped without it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from busapp.core.descriptors import AGREEMENT, classify, cohen_kappa, describe, outline_features


def ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1


def star(h: int, w: int, cy: float, cx: float, r: float, spikes: int = 9) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    ang = np.arctan2(yy - cy, xx - cx)
    rad = np.hypot(yy - cy, xx - cx)
    return rad <= r * (0.55 + 0.45 * np.cos(spikes * ang) ** 8)


def scene(mask: np.ndarray, inside: float = 40, outside: float = 120, below: float | None = None,
          seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full(mask.shape, outside, float)
    if below is not None:
        ys, xs = np.nonzero(mask)
        img[ys.max() + 1:, xs.min():xs.max() + 1] = below
    img[mask] = inside
    return np.clip(img + rng.normal(0, 8, mask.shape), 0, 255).astype(np.uint8)


def test_shape_orientation_margin_of_synthetic_lesions() -> None:
    h, w = 300, 400
    oval = ellipse(h, w, 120, 200, 40, 90)
    c = classify(outline_features(scene(oval), oval))
    assert (c["shape"], c["orientation"], c["margin"]) == ("oval", "parallel", "circumscribed")
    disc = ellipse(h, w, 120, 200, 60, 60)
    assert classify(outline_features(scene(disc), disc))["shape"] == "round"
    tall = ellipse(h, w, 140, 200, 90, 40)
    assert classify(outline_features(scene(tall), tall))["orientation"] == "not parallel"
    spiky = star(h, w, 130, 200, 80)
    c = classify(outline_features(scene(spiky), spiky))
    assert (c["shape"], c["margin"]) == ("irregular", "not circumscribed")


def test_posterior_features_and_echo_pattern() -> None:
    h, w = 300, 400
    m = ellipse(h, w, 100, 200, 40, 70)
    assert classify(outline_features(scene(m, below=200), m))["posterior_features"] == "enhancement"
    assert classify(outline_features(scene(m, below=40), m))["posterior_features"] == "shadowing"
    assert classify(outline_features(scene(m), m))["posterior_features"] == "no posterior features"
    # Thresholds from the data: "isoechoic" lesions read somewhat darker than the ring around them.
    assert classify(outline_features(scene(m, inside=94), m))["echo_pattern"] == "isoechoic"
    assert classify(outline_features(scene(m, inside=130), m))["echo_pattern"] == "hyperechoic"
    assert classify(outline_features(scene(m, inside=55), m))["echo_pattern"] == "hypoechoic"


def test_describe_says_how_and_shows_only_agreeing_ones() -> None:
    m = ellipse(200, 300, 90, 150, 30, 60)
    ds = describe(scene(m), m)
    assert [d.key for d in ds] == ["shape", "orientation", "margin", "echo_pattern", "posterior_features"]
    assert all(d.how for d in ds)
    shown = {d.key for d in describe(scene(m), m, shown_only=True)}
    assert shown == {k for k, a in AGREEMENT.items() if a is not None and a[0] >= 0.40} | {"orientation"}
    assert describe(scene(m), np.zeros_like(m)) == []


def test_cohen_kappa() -> None:
    a = ["x", "x", "y", "y", "x", "y"]
    assert cohen_kappa(a, a) == 1.0
    # Textbook example: po = 0.7, pe = 0.5 -> 0.4
    r1 = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    r2 = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    assert math.isclose(cohen_kappa(r1, r2), 0.4)
    with pytest.raises(ValueError):
        cohen_kappa([], [])


def test_published_agreement_is_what_the_data_gives(data_root) -> None:
    """The figures the app shows (AGREEMENT) are the held-out half's, recomputed here."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "validate_descriptors.py"
    spec = importlib.util.spec_from_file_location("validate_descriptors", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    agreement, load_features = mod.agreement, mod.load_features

    items = load_features(data_root / "breast_lesions_usg", None)
    test = [i for i in items if i["half"] == "test"]
    for key, published in AGREEMENT.items():
        got = agreement(test, key)
        if published is None:
            assert got is None
            continue
        assert got is not None and got[2] == published[2]
        assert got[0] == pytest.approx(published[0], abs=0.006) and got[1] == pytest.approx(published[1], abs=0.006)
