"""A tiny end-to-end run of busapp-train: interrupted, resumed, and the bundle works in the app."""

import csv
import json

import numpy as np
import pytest


@pytest.mark.slow
def test_tiny_training_run_resumes_and_writes_a_working_bundle(data_root, tmp_path, monkeypatch):
    keras = pytest.importorskip("keras")
    from busapp.core.predictor import Predictor
    from busapp.training.cli import main

    out, work = tmp_path / "bundle", tmp_path / "work"
    argv = ["--data", str(data_root), "--out", str(out), "--work-dir", str(work),
            "--limit", "10", "--epochs", "2", "--size", "64", "--batch-size", "4", "--bootstrap", "20"]

    # Interrupt the first run right after its first epoch (the backup is written by then).
    original = keras.callbacks.CSVLogger.on_epoch_end

    def interrupted(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["train", *argv])
    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", original)
    assert not (out / "card.json").exists()

    assert main(["train", *argv]) == 0
    with open(work / "history.csv") as f:
        epochs = [row["epoch"] for row in csv.DictReader(f)]
    assert epochs == ["0", "1"]  # resumed at the second epoch; the first was not trained again

    card = json.loads((out / "card.json").read_text())
    assert card["input"]["size"] == 64 and card["metrics"]["n_test_images"] == 10
    assert (work / "train.log").exists()
    pred = Predictor(out).predict(np.full((120, 90), 100, np.uint8))
    assert pred.mask.shape == (120, 90)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
