"""The worker as the window uses it: a stored calibration applies when an image is analysed again
(issue 25 defect 11 / issue 26 drift)."""

from __future__ import annotations

import pytest
from gui_helpers import wait_all_done

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

