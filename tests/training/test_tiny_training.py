"""A tiny end-to-end run of busapp-train writes a bundle the app can load."""

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_tiny_training_run_writes_a_working_bundle(data_root, tmp_path):
    pytest.importorskip("tensorflow")
    from busapp.core.predictor import Predictor
    from busapp.training.cli import main

    out, work = tmp_path / "bundle", tmp_path / "work"
    argv = ["--data", str(data_root), "--out", str(out), "--work-dir", str(work),
            "--limit", "10", "--epochs", "1", "--size", "64", "--batch-size", "4", "--bootstrap", "20"]
    assert main(["train", *argv]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["input"]["size"] == 64 and card["metrics"]["n_test_images"] == 10
    assert (work / "history.csv").exists() and (work / "train.log").exists()
    pred = Predictor(out).predict(np.full((120, 90), 100, np.uint8))
    assert pred.mask.shape == (120, 90)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # Rerunning with the same work dir resumes: fit finds its backup and the finished epochs.
    assert main(["fit", *argv]) == 0
