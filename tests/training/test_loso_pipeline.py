"""busnet 2's pipeline end to end on a tiny run: leave-one-site-out fit, held-out outputs, the gate,
and a released bundle whose card the app reads (decision, second stage, per-site figures)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_tiny_round_gives_a_bundle_the_app_runs(tmp_path, data_root, sample_images):
    pytest.importorskip("tensorflow")
    from busapp.core.imageio import load_image
    from busapp.core.model_bundle import load_bundle
    from busapp.core.predictor import Predictor
    from busapp.core.risk import assess
    from busapp.training.data import SITES
    from busapp.training.loso import SITE_RECIPE, loso_fit
    from busapp.training.loso_eval import gate, load_outputs, predict_run
    from busapp.training.release import release

    tiny = replace(SITE_RECIPE, size=32, epochs=1, batch_size=4)
    base = tmp_path / "all"
    loso_fit(None, data_root, base, tiny, limit=8, run_eagerly=True)
    assert json.loads((base / "loso.json").read_text())["sites"] == list(SITES)
    # One tiny network stands in for each held-out run (the pipeline, not the figures, is under test).
    held = []
    for site in SITES:
        d = tmp_path / f"out-{site}"
        shutil.copytree(base, d, ignore=shutil.ignore_patterns("backup", "cache"))
        (d / "loso.json").write_text(json.dumps({"held_out": site, "sites": [s for s in SITES if s != site]}))
        predict_run(d, data_root, limit=60)
        out = load_outputs(d / "held_out.npz")
        assert set(out["sites"]) == {site} and out["features"].shape == (60, 12)
        held.append(d)
    # A packed data root (a lent GPU machine predicts from it) gives the same held-out outputs.
    from busapp.training.data import records_for
    from busapp.training.dataset import pack_arrays
    from busapp.training.loso_eval import run_outputs

    recs = [r for s in ("train", "val") for r in records_for(s, data_root, datasets=(SITES[0],))][:12]
    pack_arrays(data_root, recs, 32, tmp_path / "pack")
    packed, direct = run_outputs(held[0], recs, tmp_path / "pack"), run_outputs(held[0], recs, data_root)
    for k in direct:
        np.testing.assert_array_equal(packed[k], direct[k], err_msg=k)
    per_site = {json.loads((d / "loso.json").read_text())["held_out"]: load_outputs(d / "held_out.npz") for d in held}
    g = gate(per_site, "P1")
    for site, out in per_site.items():
        if (out["y"] == 2).any():  # the threshold keeps the floor on every held-out site
            assert g["sites"][site]["sensitivity"] >= 0.92

    bundle = tmp_path / "bundle"
    card = release("tiny", base, held, "P1", bundle, data_root, n_boot=0, gate_report=g)
    assert set(card["metrics"]["test_by_dataset"]) == set(SITES)
    assert set(card["decision"]["per_site"]) == set(SITES)
    rule, post = g["outline_rule"], card["postprocessing"]  # the card ships the rule the search chose
    assert (post["min_area_fraction"], post["mask_keep"]) == (rule["min_area"], rule["keep"])
    b = load_bundle(bundle)
    assert b.card["second_stage"]["inputs"][3:] == list(card["second_stage"]["inputs"][3:])
    pred = Predictor(bundle).predict(load_image(sample_images[0]).frame(0))
    assert abs(sum(pred.probabilities.values()) - 1) < 1e-6
    risk = assess(pred, b)
    assert risk.validated and risk.threshold == pytest.approx(g["threshold"])

    # The one-view graph (issue 27: half the network's arithmetic) is gated on its own outputs and
    # released from them: no mirror in the graph, and the card says so.
    from busapp.training.loso_eval import held_out_outputs

    for d in held:
        predict_run(d, data_root, limit=60, views="image")
    one = held_out_outputs(held, "image")
    assert not any(np.allclose(one[s]["logits"], per_site[s]["logits"]) for s in SITES)
    g1 = gate(one, "P1")
    bundle1 = tmp_path / "bundle-one-view"
    card1 = release("tiny", base, held, "P1", bundle1, data_root, n_boot=0, gate_report=g1, views="image")
    assert card1["architecture"]["test_time_views"] == ["image"]
    assert "mirror" not in card1["outputs"]["probs"]
    ops = {o["op_name"] for o in Predictor(bundle1)._interpreter._get_ops_details()}
    assert "REVERSE_V2" not in ops
    ops_mirror = {o["op_name"] for o in Predictor(bundle)._interpreter._get_ops_details()}
    assert "REVERSE_V2" in ops_mirror
