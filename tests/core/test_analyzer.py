"""The one analysis path (core/analysis.py): prediction, calibration, measurements, audit, timings."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from busapp.core.analysis import AnalysisResult, Analyzer
from busapp.core.audit import AuditLog
from busapp.core.imageio import LoadedImage, load_image
from busapp.core.measure import USER_CALIBRATED, CalibrationStore
from busapp.core.predictor import Prediction

MODEL_SHA = "ab" * 32


class FakePredictor:
    """Outlines a fixed 20 x 40 px box: the numbers it gives are known exactly."""

    def __init__(self, decision: dict | None = None) -> None:
        from risk_cards import fake_card

        card = fake_card(sha256=MODEL_SHA, decision=decision)
        self.bundle = SimpleNamespace(name="fake", version="0.1", card=card, classes=card.classes)
        self.calls: list[tuple[int, ...]] = []
        self.p_malignant = 0.2

    def predict(self, image: np.ndarray) -> Prediction:
        self.calls.append(image.shape)
        mask = np.zeros(image.shape[:2], bool)
        mask[10:30, 20:60] = True
        m = self.p_malignant
        probs = {"normal": 0.1, "benign": 0.9 - m, "malignant": m}
        return Prediction(max(probs, key=probs.get), probs, mask, "fake", "0.1", False)


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "scan.png"
    Image.fromarray((np.arange(100 * 120) % 251).astype(np.uint8).reshape(100, 120)).save(path)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fake_predictor_result_without_calibration(png: Path) -> None:
    r = Analyzer(FakePredictor()).analyze(load_image(png), source="cli")
    assert isinstance(r, AnalysisResult)
    assert r.prediction.label == "benign" and r.image_sha256 == sha(png)
    assert r.risk is not None and r.risk.p_malignant == pytest.approx(0.2)
    assert r.measurements is not None and r.measurements.unit == "px" and r.measurements.area == 800
    assert r.pixel_spacing_mm is None and r.spacing_source is None
    assert r.frame is None and r.n_frames == 1
    assert r.model.sha256 == MODEL_SHA and r.model.version == "0.1"
    assert {"hash", "frame", "predict", "measure", "total"} <= set(r.timings)
    assert all(t >= 0 for t in r.timings.values()) and r.timings["total"] >= r.timings["predict"]
    assert r.audit_error is None


def test_stored_calibration_is_applied_automatically(png: Path, tmp_path: Path) -> None:
    """Issue 26 drift: whoever calls the Analyzer with the store gets the user's calibration."""
    store = CalibrationStore(tmp_path / "cal.json")
    store.set(sha(png), (0.1, 0.1))
    r = Analyzer(FakePredictor(), calibrations=store).analyze(load_image(png), source="gui")
    assert r.measurements is not None and r.measurements.unit == "mm"
    assert r.spacing_source == USER_CALIBRATED and r.pixel_spacing_mm == (0.1, 0.1)
    assert r.measurements.area == pytest.approx(800 * 0.01)
    assert r.measurements.longest_diameter == pytest.approx(np.hypot(4.0, 2.0))
    # Another image (other sha256) is not calibrated by it.
    other = tmp_path / "other.png"
    Image.fromarray(np.full((100, 120), 7, np.uint8)).save(other)
    assert Analyzer(FakePredictor(), calibrations=store).analyze(load_image(other), source="gui").measurements.unit == "px"


def test_one_audit_record_with_model_sha256_and_frame(png: Path, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    frames = [np.zeros((50, 80), np.uint8), np.full((50, 80), 9, np.uint8)]
    cine = LoadedImage(png, frames, "DICOM")
    fake = FakePredictor()
    r = Analyzer(fake, audit=log).analyze(cine, 1, source="gui", sha256=sha(png))
    assert r.frame == 1 and r.n_frames == 2 and "hash" not in r.timings  # the caller's sha256 is used
    (entry,) = list(log.entries())
    assert entry["action"] == "analysis" and entry["source"] == "gui" and entry["sha256"] == sha(png)
    assert entry["model"] == {"name": "fake", "version": "0.1", "sha256": MODEL_SHA}
    assert entry["details"] == {"frame": 1, "frames": 2}
    assert entry["outputs"]["label"] == "benign" and entry["outputs"]["measurements"]["area"] == 800
    assert "scan" not in json.dumps(entry)  # never the file name


def test_failed_audit_write_keeps_the_result_and_says_why(png: Path) -> None:
    class FullDisk:
        def record_analysis(self, *a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

    r = Analyzer(FakePredictor(), audit=FullDisk()).analyze(load_image(png), source="cli")
    assert r.prediction.label == "benign"
    assert r.audit_error is not None and "disk is full" in r.audit_error
    assert "Errno" not in r.audit_error and "No space" not in r.audit_error


def test_card_without_decision_gives_no_threshold_honestly(png: Path) -> None:
    r = Analyzer(FakePredictor()).analyze(load_image(png), source="cli")
    assert r.risk is not None and r.risk.validated is False
    assert r.suspicious is None and r.threshold is None and "no validated threshold" in r.risk.headline
    assert r.risk.p_malignant == pytest.approx(0.2)
    out = r.to_json()
    assert out["suspicious"] is None and out["threshold"] is None and out["risk"]["validated"] is False
    assert out["label"] == "benign" and out["model"]["sha256"] == MODEL_SHA
    json.dumps(out)  # plain JSON


@pytest.mark.parametrize("p_malignant", [0.2, 0.6])
def test_card_decision_makes_the_result_suspicious_or_not(png: Path, tmp_path: Path, p_malignant: float) -> None:
    from risk_cards import DECISION

    fake = FakePredictor(decision=DECISION)
    fake.p_malignant = p_malignant
    log = AuditLog(tmp_path / "audit.jsonl")
    r = Analyzer(fake, audit=log).analyze(load_image(png), source="batch")
    t = DECISION["suspicious_threshold"]
    assert r.threshold == t and r.suspicious is (p_malignant >= t) and r.risk.validated
    assert r.to_json()["risk"]["band"] == r.risk.band and r.risk.band is not None
    (entry,) = list(log.entries())
    assert entry["outputs"]["suspicious"] is r.suspicious and entry["outputs"]["risk_band"] == r.risk.band


def test_input_warnings_are_those_of_the_input_check(png: Path) -> None:
    from busapp.core import input_check

    fake = FakePredictor()
    loaded = load_image(png)
    r = Analyzer(fake).analyze(loaded, source="cli")
    assert r.input_warnings == tuple(input_check.check(loaded.frame(0), r.prediction, fake.bundle))
    assert r.to_json()["input_warnings"] == [{"code": w.code, "message": w.message} for w in r.input_warnings]
    assert {"risk", "input_check"} <= set(r.timings)


def test_helper_thread_gives_the_same_input_check(png: Path, monkeypatch) -> None:
    """The statistics worked out on the helper thread are the ones the check would work out itself."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from busapp.core import input_check

    threads: list[str] = []
    part = input_check.image_part

    def spy(image):
        threads.append(threading.current_thread().name)
        return part(image)

    monkeypatch.setattr(input_check, "image_part", spy)
    loaded = load_image(png)
    alone = Analyzer(FakePredictor()).analyze(loaded, source="cli")
    with ThreadPoolExecutor(1, thread_name_prefix="helper") as pool:
        helped = Analyzer(FakePredictor(), helper=pool).analyze(loaded, source="cli")
    assert helped.input_warnings == alone.input_warnings
    assert threads[0] == threading.current_thread().name and threads[1].startswith("helper")


def test_real_model_on_a_sample(sample_images: list[Path]) -> None:
    from busapp.core.predictor import Predictor

    predictor = Predictor()
    loaded = load_image(sample_images[0])
    r = Analyzer(predictor).analyze(loaded, source="cli")
    direct = predictor.predict(loaded.frame(0))
    assert r.prediction.label == direct.label
    assert r.prediction.probabilities == pytest.approx(direct.probabilities, abs=1e-6)
    assert np.array_equal(r.prediction.mask, direct.mask)
    assert r.model.sha256 == predictor.bundle.card["files"]["tflite"]["sha256"]
    assert (r.measurements is None) == (not direct.mask.any())


def test_cli_and_batch_apply_the_same_calibration(sample_images: list[Path], tmp_path: Path) -> None:
    """Issue 26 drift: predict, batch (and the GUI through the Analyzer) measure with the stored calibration."""
    data = tmp_path / "data"
    src = sample_images[0]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / src.name).write_bytes(src.read_bytes())
    CalibrationStore(data / "calibrations.json").set(sha(src), (0.05, 0.05))
    env = {**os.environ, "BUSAPP_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "busapp.cli.main"]
    run = subprocess.run([*cmd, "predict", str(src)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([*cmd, "batch", str(folder), "--out", str(tmp_path / "out"), "--quiet"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    records = [e for e in AuditLog(data / "audit.jsonl").entries() if e["action"] == "analysis"]
    assert len(records) == 2
    measured = [r["outputs"]["measurements"] for r in records]
    if measured[0] is None:
        pytest.skip("the model outlines nothing on this sample")
    assert all(m["unit"] == "mm" and m["spacing_source"] == USER_CALIBRATED for m in measured)
    assert measured[0] == measured[1]
