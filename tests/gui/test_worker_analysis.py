"""The analysis worker on its own, with a fake predictor: what each job delivers, in which order,
the calibration store, the audit log, model failures, superseded frames. No window, no model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import make_cine

from busapp.core.analysis import Analyzer
from busapp.core.audit import AuditLog
from busapp.core.hashing import sha256_file
from busapp.core.imageio import ImageLoadError, load_image
from busapp.core.measure import USER_CALIBRATED, CalibrationStore
from busapp.core.model_bundle import ModelBundleError, load_bundle
from busapp.core.predictor import Prediction
from busapp.gui.tasks import Task
from busapp.gui.worker import STARTED, Analysis, AnalysisWorker, DecodedImage, ModelInfo, ModelUnavailable


class FakePredictor:
    """The real bundle's card (so risk / input checks find what they read), a made-up answer:
    a 40 x 60 px lesion at the top left, "benign" 0.7."""

    def __init__(self) -> None:
        self.bundle = load_bundle(verify=False)
        self.calls: list[tuple[int, ...]] = []
        self.gate: threading.Event | None = None

    def predict(self, pixels: np.ndarray) -> Prediction:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append(pixels.shape)
        mask = np.zeros(pixels.shape[:2], bool)
        mask[10:50, 20:80] = True
        b = self.bundle
        return Prediction("benign", {"normal": 0.1, "benign": 0.7, "malignant": 0.2}, mask, b.name, b.version, False)


@pytest.fixture
def fake() -> FakePredictor:
    return FakePredictor()


def make_worker(fake: FakePredictor, tmp_path: Path, store: CalibrationStore | None = None) -> AnalysisWorker:
    audit = AuditLog(tmp_path / "audit.jsonl")
    return AnalysisWorker(make_analyzer=lambda: Analyzer(fake, calibrations=store, audit=audit))


def run_open(worker: AnalysisWorker, path: Path) -> tuple[list[object], Analysis]:
    progress: list[object] = []
    task = worker.open(1, path)
    task.add_progress_callback(lambda _t, v: progress.append(v))
    return progress, task.result(30)


def test_open_reports_the_image_then_the_analysis(fake, tmp_path: Path, sample_images) -> None:
    worker = make_worker(fake, tmp_path)
    try:
        info = worker.load_model().result(30)
        assert isinstance(info, ModelInfo) and info.version == fake.bundle.version
        worker.warm_up().result(30)
        assert fake.calls  # the warm-up inferences (blank image, bundled sample), before any image
        fake.calls.clear()
        progress, a = run_open(worker, sample_images[0])
    finally:
        assert worker.shutdown(2.0)
    assert progress[0] == STARTED
    decoded = progress[1]
    assert isinstance(decoded, DecodedImage)
    assert decoded.sha256 == sha256_file(sample_images[0])
    assert decoded.display.width() == decoded.pixels.shape[1] and not decoded.thumbnail.isNull()
    assert max(decoded.thumbnail.width(), decoded.thumbnail.height()) <= 104
    assert a.prediction.label == "benign" and a.frame_index == 0 and a.n_frames == 1
    assert a.measurements is not None and a.measurements.unit == "px"
    assert a.fill is not None and a.fill.size().toTuple() == decoded.pixels.shape[1::-1]
    assert a.outline.boundingRect().toRect().getRect() == (20, 10, 60, 40)
    assert a.result is not None and a.result.image_sha256 == decoded.sha256
    for stage in ("decode", "hash", "display", "thumbnail", "predict", "measure", "overlay"):
        assert a.timings[stage] >= 0.0
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    analyses = [e for e in entries if e["action"] == "analysis"]
    assert len(analyses) == 1 and analyses[0]["sha256"] == decoded.sha256 and analyses[0]["source"] == "gui"


def test_a_stored_calibration_applies_when_the_image_is_analysed_again(fake, tmp_path: Path,
                                                                      sample_images) -> None:
    store = CalibrationStore(tmp_path / "calibrations.json")
    worker = make_worker(fake, tmp_path, store)
    try:
        _, before = run_open(worker, sample_images[0])
        assert before.measurements.unit == "px"
        store.set(before.result.image_sha256, (0.1, 0.2))  # the user calibrated this file
        _, again = run_open(worker, sample_images[0])
    finally:
        worker.shutdown(2.0)
    m = again.measurements
    assert m.spacing_source == USER_CALIBRATED and m.unit == "mm"
    assert m.longest_diameter < before.measurements.longest_diameter  # 0.1-0.2 mm per pixel


def test_bad_file_and_missing_model_arrive_as_exceptions(fake, tmp_path: Path, sample_images) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(sample_images[0].read_bytes()[:200])

    def no_model() -> Analyzer:
        raise ModelBundleError("No model found in /nowhere.")

    worker = AnalysisWorker(make_analyzer=no_model)
    try:
        with pytest.raises(ModelUnavailable) as model_err:
            worker.load_model().result(30)
        assert isinstance(model_err.value.__cause__, ModelBundleError)
        load_err = worker.open(1, bad).future.exception(30)
        assert isinstance(load_err, ImageLoadError) and "broken.png" in str(load_err)
        progress, task = [], worker.open(2, sample_images[0])
        task.add_progress_callback(lambda _t, v: progress.append(v))
        err = task.future.exception(30)
    finally:
        worker.shutdown(2.0)
    assert isinstance(err, ModelUnavailable)  # the image was still decoded and shown first
    assert any(isinstance(v, DecodedImage) for v in progress)


def test_a_newer_frame_request_supersedes_an_unstarted_one(fake, tmp_path: Path, sample_images) -> None:
    cine = make_cine(sample_images[0], tmp_path / "cine.dcm", n=5)
    loaded = load_image(cine)
    sha = sha256_file(cine)
    worker = make_worker(fake, tmp_path)
    fake.gate = threading.Event()
    try:
        blocker = worker.analyse_frame(1, loaded, 1, sha)  # runs, held by the gate
        for _ in range(3000):
            if blocker.future.running():
                break
            threading.Event().wait(0.01)
        superseded = worker.analyse_frame(1, loaded, 2, sha)
        wanted = worker.analyse_frame(1, loaded, 4, sha)
        assert superseded.cancelled
        fake.gate.set()
        assert blocker.result(30).frame_index == 1  # running work finishes (its result is kept)
        a = wanted.result(30)
    finally:
        worker.shutdown(2.0)
    assert a.frame_index == 4 and a.n_frames == 5 and a.result.frame == 4
    assert len(fake.calls) == 2  # frame 1, frame 4: never frame 2


def test_cancelled_jobs_do_not_run_and_shutdown_is_prompt(fake, tmp_path: Path, sample_images) -> None:
    worker = make_worker(fake, tmp_path)
    fake.gate = threading.Event()
    started = threading.Event()
    worker.executor.submit(lambda task: started.set() or fake.gate.wait(10))  # something long runs
    started.wait(5)
    tasks: list[Task] = [worker.open(j, p) for j, p in enumerate(sample_images[:3])]
    worker.cancel([0, 1])
    assert tasks[0].cancelled and tasks[1].cancelled and not tasks[2].cancelled
    assert worker.shutdown(0.2) is False  # the long job is still running: not waited for
    assert all(t.cancelled for t in tasks)
    fake.gate.set()
    assert worker.wait(5000)
