"""A shipped bundle's members taken out as run folders rebuild the very same graph, so a later
bundle can keep one of them without training it again."""

import json

import numpy as np
import pytest

from busapp.core.model_bundle import load_bundle
from busapp.training.data import records_for


@pytest.mark.slow
def test_extracted_members_rebuild_the_shipped_graph(bundle_dir, data_root, tmp_path):
    keras = pytest.importorskip("keras")
    from busapp.core.preprocess import preprocess
    from busapp.training.cli import main
    from busapp.training.data import load_image
    from busapp.training.members import load_member
    from busapp.training.model import inference_model

    assert main(["extract-members", str(bundle_dir), "--out", str(tmp_path)]) == 0
    bundle = load_bundle(bundle_dir)
    card = bundle.card
    folders = [tmp_path / m["work_dir"] for m in card["training"]["members"]]
    for folder, member in zip(folders, card["training"]["members"], strict=True):
        assert json.loads((folder / "config.json").read_text()) == member["config"]
        assert json.loads((folder / "best.json").read_text())["extracted_from"] == f"{card['name']} {card['version']}"

    views = card["architecture"]["test_time_views"]
    rebuilt = inference_model([load_member(f, i) for i, f in enumerate(folders)], card["postprocessing"]["temperature"],
                              zoom_in="zoom_in" in views)
    shipped = keras.models.load_model(bundle.file("keras"), compile=False)
    recs = records_for("test", data_root)[::45][:3]
    x = np.stack([preprocess(load_image(data_root, r), bundle.input_size)[0] for r in recs])
    a, b = rebuilt(x, training=False), shipped(x, training=False)
    assert np.abs(np.asarray(a["probs"]) - np.asarray(b["probs"])).max() < 1e-6
    assert np.abs(np.asarray(a["mask"]) - np.asarray(b["mask"])).max() < 1e-6
    # Each folder holds its own member, not one member twice.
    logits = [np.asarray(load_member(f, i)(x, training=False)["class_logits"]) for i, f in enumerate(folders)]
    assert len(logits) < 2 or np.abs(logits[0] - logits[1]).max() > 1e-3
