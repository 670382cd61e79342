"""End to end through the real window: drop real images, wait for the model, read the panel."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from gui_helpers import RESULT_TIMEOUT_MS, copies, drop, wait_all_done
from PySide6.QtCore import QPoint, Qt

from busapp.core.imageio import load_image
from busapp.core.predictor import Predictor
from busapp.gui.image_list import DONE, ERROR


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor()


def test_drop_samples_shows_the_predictors_result(qtbot, window, sample_images, predictor, artifacts) -> None:
    files = sample_images[:3]
    assert drop(window, files)
    first = window.records()[0]
    # The first dropped image is selected at once, before any result.
    assert window.current_record() is first
    qtbot.waitUntil(lambda: window.panel.state == "result", timeout=RESULT_TIMEOUT_MS)
    wait_all_done(qtbot, window, n=3)

    for rec in window.records():
        assert rec.status == DONE
        expected = predictor.predict(load_image(rec.path).frame(0))
        assert rec.prediction.label == expected.label
        assert math.isclose(sum(rec.prediction.probabilities.values()), 1.0, abs_tol=1e-4)
        assert rec.prediction.mask.shape == rec.decoded.pixels.shape[:2]
        window.image_list.select_job(rec.job_id)
        panel = window.panel
        assert panel.state == "result"
        assert panel.shown_label == expected.label
        assert expected.label in panel.class_line.text()  # the headline is the malignancy assessment
        assert f"{expected.confidence:.2f}" in panel.class_line.text()
        assert f"{expected.probabilities['malignant']:.2f}" in panel.headline.text()
        shown = panel.bars.probabilities()
        assert set(shown) == {"normal", "benign", "malignant"}
        for k, v in expected.probabilities.items():
            assert math.isclose(shown[k], v, abs_tol=1e-4)
        assert expected.model_name in panel.model_line.text()
        assert expected.model_version in panel.model_line.text()
        assert panel.low_confidence.isVisibleTo(panel) == expected.low_confidence
        if rec.analysis.measurements is not None:
            m = rec.analysis.measurements
            assert panel.measurement_texts()["area"].endswith(m.area_unit)
            assert panel.measurement_texts()["longest"].endswith(m.unit)
        assert window.image_list.status(rec.job_id) == DONE
    assert window.disclaimer.isVisible()
    assert "not a diagnosis" in window.disclaimer.label.text()
    assert "3 of 3 analysed" in window.progress_label.text()

    # A result with a visible outline for the screenshot, if the model outlined anything.
    with_mask = [r for r in window.records() if r.analysis.measurements is not None]
    window.image_list.select_job((with_mask or window.records())[0].job_id)
    qtbot.wait(50)
    window.grab().save(str(artifacts / "main_window.png"))


def test_drop_a_folder_and_queue_30_images(qtbot, window, sample_images, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    copies(sample_images, folder, 30)
    (folder / "notes.txt").write_text("not an image")
    t0 = time.perf_counter()
    assert drop(window, [folder])
    assert time.perf_counter() - t0 < 2.0, "dropping must not wait for the scan or the analysis"
    # The folder is scanned off the GUI thread; its images arrive together when the scan ends.
    qtbot.waitUntil(lambda: len(window.records()) == 30, timeout=30_000)
    assert "Skipped 1 file" in window.statusBar().currentMessage()  # the text file, not queued
    wait_all_done(qtbot, window, n=30, timeout=180_000)
    assert all(r.status == DONE for r in window.records())
    assert "30 of 30 analysed" in window.progress_label.text()


def test_dropping_more_while_busy_does_not_block(qtbot, window, sample_images, tmp_path: Path) -> None:
    batch1 = copies(sample_images, tmp_path / "a", 12)
    batch2 = copies(sample_images, tmp_path / "b", 4)
    drop(window, batch1)
    qtbot.waitUntil(lambda: any(r.status == DONE for r in window.records()), timeout=RESULT_TIMEOUT_MS)
    t0 = time.perf_counter()
    drop(window, batch2)
    assert time.perf_counter() - t0 < 1.0
    # The same file again is not queued twice; it is selected instead.
    assert drop(window, [batch1[0]])
    assert window.current_record().path == batch1[0]
    wait_all_done(qtbot, window, n=16)


def test_bad_files_show_an_error_and_the_app_goes_on(qtbot, window, sample_images, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(sample_images[0].read_bytes()[:300])  # a truncated PNG
    text = tmp_path / "report.txt"
    text.write_text("This is a text file, not an image.\n")
    good = sample_images[1]
    assert drop(window, [corrupt, text, good])
    wait_all_done(qtbot, window, n=3)
    by_name = {r.path.name: r for r in window.records()}
    for name in ("corrupt.png", "report.txt"):
        rec = by_name[name]
        assert rec.status == ERROR and rec.error_stage == "load"
        assert rec.error and name in rec.error
        assert window.image_list.status(rec.job_id) == ERROR
        window.image_list.select_job(rec.job_id)
        assert window.panel.state == "error"
        assert window.panel.error_box.isVisibleTo(window.panel)
        assert window.panel.error_box.text() == rec.error
        assert not window.viewer.has_image()
    assert by_name[good.name].status == DONE
    assert "2 errors" in window.progress_label.text()
    # The app keeps working after errors.
    drop(window, [sample_images[2]])
    wait_all_done(qtbot, window, n=4)
    assert window.records()[-1].status == DONE
    window.image_list.select_job(window.records()[-1].job_id)
    assert window.panel.state == "result"


def test_missing_model_is_reported_and_images_still_show(qtbot, make_window, sample_images, tmp_path: Path) -> None:
    empty = tmp_path / "no-model"
    empty.mkdir()
    window = make_window(bundle_dir=empty)
    drop(window, [sample_images[0]])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    assert rec.status == ERROR and rec.error_stage == "analysis"
    assert "No model found" in rec.error
    assert window.viewer.has_image()  # the image is still there to read
    assert window.panel.state == "error"
    assert "not available" in window.model_label.text()


def test_close_during_analysis_does_not_hang(qtbot, window, sample_images, tmp_path: Path) -> None:
    drop(window, copies(sample_images, tmp_path / "many", 60))
    qtbot.waitUntil(lambda: any(r.status == DONE for r in window.records()), timeout=RESULT_TIMEOUT_MS)
    assert not window.is_idle()
    t0 = time.perf_counter()
    window.close()
    assert window.worker_thread.wait(10_000)
    assert time.perf_counter() - t0 < 10.0
    assert window.worker_thread.executor.closed


def test_close_before_the_worker_started(qtbot, make_window, sample_images) -> None:
    window = make_window()
    window.open_paths([sample_images[0]])
    window.close()
    assert window.worker_thread.wait(10_000)


def test_pixel_value_under_cursor_and_navigation(qtbot, window, sample_images) -> None:
    drop(window, sample_images[:2])
    wait_all_done(qtbot, window, n=2)
    window.image_list.select_job(window.records()[0].job_id)
    vp = window.viewer.viewport()
    qtbot.mouseMove(vp, vp.rect().center())
    qtbot.waitUntil(lambda: "grey" in window.pixel_label.text(), timeout=5000)
    x, y = (int(v) for v in window.pixel_label.text().split("\u00b7")[0].replace("x", "").split("y"))
    px = window.current_record().decoded.pixels
    assert f"grey {int(px[y, x])}" in window.pixel_label.text()

    first = window.current_record()
    window.next_action.trigger()  # Page Down
    assert window.current_record() is not first
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Left)
    assert window.current_record() is first
    qtbot.mouseMove(vp, QPoint(-5, -5))


@pytest.mark.parametrize("slow", [False, True])
def test_new_image_waits_briefly_for_its_result_then_shows_anyway(qtbot, window, sample_images, monkeypatch,
                                                                   slow: bool) -> None:
    """Image and outline appear in one paint when the result is quick; a slow result never keeps
    the image from the reader beyond the short hold."""
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=RESULT_TIMEOUT_MS)
    shown_before_result: list[bool] = []
    set_image = window.viewer.set_image

    def spy(img, *a, **k):
        rec = window.current_record()
        if img is not None and rec is not None:
            shown_before_result.append(rec.analysis is None)
        return set_image(img, *a, **k)

    monkeypatch.setattr(window.viewer, "set_image", spy)
    window.display_hold_ms = 2000  # the result (~0.1 s here) comes well inside it
    if slow:
        window.display_hold_ms = 150
        run = Predictor.run

        def slow_run(self, x):
            time.sleep(1.5)
            return run(self, x)

        monkeypatch.setattr(Predictor, "run", slow_run)
    drop(window, [sample_images[0]])
    rec = window.records()[-1]
    if slow:  # the image is on screen while the model still runs
        qtbot.waitUntil(lambda: window.viewer.has_image(), timeout=RESULT_TIMEOUT_MS)
        assert rec.analysis is None and shown_before_result == [True]
    wait_all_done(qtbot, window, n=1)
    assert window.viewer.has_image() and window.panel.state == "result"
    assert shown_before_result == ([True] if slow else [False])  # one set_image: the bare image only if slow
