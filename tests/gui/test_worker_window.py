"""The worker as the window uses it: a stored calibration applies when an image is analysed again
(issue 25 defect 11 / issue 26 drift), and memory stays bounded with many images open (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import RESULT_TIMEOUT_MS, copies, wait_all_done

from busapp.core.measure import USER_CALIBRATED
from busapp.gui.image_list import DONE
from busapp.gui.main_window import MainWindow


def test_stored_calibration_applies_when_the_gui_analyses_again(qtbot, window: MainWindow, sample_images) -> None:
    window.open_paths(sample_images[:3])
    wait_all_done(qtbot, window, n=3)
    recs = [r for r in window.records() if r.analysis.measurements is not None]
    if not recs:
        pytest.skip("the current model outlines nothing on these samples")
    rec = recs[0]
    assert rec.analysis.measurements.unit == "px"
    window.tools.calibrations.set(rec.sha256, (0.1, 0.1))  # as Tools > Calibrate stores it
    path = rec.path
    window.clear_images()
    window.open_paths([path])  # a new analysis on the worker, not a re-measure on the GUI thread
    wait_all_done(qtbot, window, n=1)
    again = window.records()[0]
    assert again.status == DONE and again.analysis.result is not None
    m = again.analysis.measurements
    assert m.spacing_source == USER_CALIBRATED and m.unit == "mm"
    assert window.panel.measurement_texts()["longest"].endswith(" mm")



def _analyses(data_dir: Path) -> int:
    lines = (data_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return sum(json.loads(x)["action"] == "analysis" for x in lines)


def test_pixels_beyond_the_cache_are_dropped_and_decoded_again_when_shown(
        qtbot, window: MainWindow, sample_images, tmp_path: Path, _private_data_dir: Path) -> None:
    window._recent.limit = 2  # a small cache, so 5 images overflow it
    files = copies(sample_images, tmp_path / "five", 5)
    window.open_paths(files)
    wait_all_done(qtbot, window, n=5)
    recs = window.records()
    shown = window.current_record()
    assert shown is recs[0]  # the first opened stays selected: it keeps its pixels
    evicted = [r for r in recs if r.evicted]
    assert len(evicted) == 3 and shown not in evicted  # 5 images, 2 cached: the one on screen and the last
    for r in evicted:
        assert r.decoded is None and r.loaded is None and r.analysis.fill is None
        assert r.prediction is not None and r.status == DONE  # the result itself stays
        assert window.image_list.detail(r.job_id) != "Done"  # the list still names the result
    n_audited = _analyses(_private_data_dir)

    rec = evicted[0]
    analysis = rec.analysis
    window.image_list.select_job(rec.job_id)
    qtbot.waitUntil(lambda: not rec.evicted and window.viewer.has_image(), timeout=RESULT_TIMEOUT_MS)
    assert rec.analysis is analysis  # the same result object, its overlay rebuilt from its mask
    assert rec.decoded.pixels.shape[:2] == analysis.prediction.mask.shape
    assert (analysis.fill is not None) == bool(analysis.prediction.mask.any())
    assert window.panel.state == "result"
    assert _analyses(_private_data_dir) == n_audited  # shown again, not analysed again
    assert sum(not r.evicted for r in recs) == 2
