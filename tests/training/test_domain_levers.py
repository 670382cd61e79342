"""Round 5's two cross-site levers: MixStyle in the encoder and site-balanced sampling."""

from __future__ import annotations

import numpy as np
import pytest

from busapp.training.fit import site_balanced_index


def test_site_balance_gives_every_site_as_many_images_as_the_largest():
    sites = ["busi"] * 10 + ["uclm"] * 4 + ["breast"] * 3
    idx = site_balanced_index(sites, seed=1)
    names = np.asarray(sites)[idx]
    assert {s: int((names == s).sum()) for s in set(sites)} == {"busi": 10, "uclm": 10, "breast": 10}
    # Every image of a small site is used, none more than once beyond its whole copies.
    counts = np.bincount(idx, minlength=len(sites))
    assert (counts[:10] == 1).all()
    assert set(counts[10:14]) <= {2, 3} and counts[10:14].sum() == 10
    assert set(counts[14:]) == {3, 4} and counts[14:].sum() == 10
    assert (site_balanced_index(sites, seed=1) == idx).all()


def test_site_balance_leaves_a_balanced_set_alone():
    assert (site_balanced_index(["a", "b", "a", "b"], seed=0) == np.arange(4)).all()


def test_mixstyle_is_the_identity_at_inference_and_mixes_statistics_in_training():
    pytest.importorskip("keras")
    from busapp.training.mixstyle import MixStyle

    rng = np.random.default_rng(0)
    # Two "sites": very different per-channel mean and spread.
    x = np.concatenate([rng.normal(0, 1, (8, 6, 6, 4)), rng.normal(5, 3, (8, 6, 6, 4))]).astype(np.float32)
    layer = MixStyle(p=1.0, alpha=0.1, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    assert y.shape == x.shape and np.isfinite(y).all()
    mu_x, mu_y = x.mean(axis=(1, 2)), y.mean(axis=(1, 2))
    # Some images took on (part of) another image's statistics; the content is kept: each image's
    # normalised pattern is unchanged.
    assert np.abs(mu_y - mu_x).max() > 1.0
    norm = lambda a: (a - a.mean(axis=(1, 2), keepdims=True)) / a.std(axis=(1, 2), keepdims=True)  # noqa: E731
    np.testing.assert_allclose(norm(y), norm(x), atol=1e-3)


def test_a_mixstyle_busnet_saves_loads_and_exports_like_a_plain_one(tmp_path):
    pytest.importorskip("keras")
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from busapp.training.export import export_tflite
    from busapp.training.model import build_busnet, inference_model

    keras.utils.set_random_seed(0)
    trained = build_busnet(64, pretrained=False, lesion_pool=True, mixstyle=True, seed=5)
    assert sum("mixstyle" in layer.name for layer in trained.get_layer("efficientnet_lite0").layers) == 3
    trained.save_weights(tmp_path / "w.weights.h5")
    # What members.load_member does with a run's config.json: the same graph, its weights.
    member = build_busnet(64, pretrained=False, lesion_pool=True, mixstyle=True)
    member.load_weights(tmp_path / "w.weights.h5")
    x = np.random.default_rng(1).normal(0, 0.5, (2, 64, 64, 1)).astype(np.float32)
    ref = member(x, training=False)
    np.testing.assert_allclose(np.asarray(ref["class_logits"]), np.asarray(trained(x, training=False)["class_logits"]),
                               atol=1e-5)

    final = inference_model([member])
    export_tflite(final, tmp_path / "m.tflite")
    it = Interpreter(str(tmp_path / "m.tflite"))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x[:1])
    it.invoke()
    lite = {tuple(d["shape"]): it.get_tensor(d["index"]) for d in it.get_output_details()}
    np.testing.assert_allclose(lite[(1, 3)], np.asarray(final(x[:1])["probs"]), atol=1e-4)
