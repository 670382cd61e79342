"""Tools > Calibrate pixel size, File > Batch analysis, View > measured axes, small screens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import make_settings, wait_all_done
from PySide6.QtCore import QPointF, QRect, QSize

from busapp.core.measure import USER_CALIBRATED, CalibrationStore
from busapp.gui.calibration import CalibrationDialog
from busapp.gui.main_window import MainWindow, initial_window_size


@pytest.fixture
def lesion_window(qtbot, window: MainWindow, sample_images) -> MainWindow:
    """The window showing a sample on which the model outlined a region (measured in pixels)."""
    window.open_paths(sample_images[:3])
    wait_all_done(qtbot, window, n=3)
    recs = [r for r in window.records() if r.analysis.measurements is not None]
    if not recs:
        pytest.skip("the current model outlines nothing on these samples")
    window.image_list.select_job(recs[0].job_id)
    return window


def test_calibration_from_the_tools_menu_remeasures_in_mm(qtbot, lesion_window: MainWindow, monkeypatch,
                                                         _private_data_dir: Path) -> None:
    w = lesion_window
    rec = w.current_record()
    px_longest = rec.analysis.measurements.longest_diameter
    assert w.panel.measurement_texts()["longest"].endswith(" px")
    assert w.tools.calibrate_action.isEnabled()
    assert w.tools.calibrate_action in w.tools.tools_menu.actions()

    def fake_exec(dlg: CalibrationDialog) -> int:  # the user draws 100 px over a 10 mm scale, OK
        dlg.view.set_line(QPointF(20, 20), QPointF(20, 120))
        dlg.length_spin.setValue(10.0)
        dlg.accept()
        return 1

    monkeypatch.setattr(CalibrationDialog, "exec", fake_exec)
    w.tools.calibrate_action.trigger()
    m = rec.analysis.measurements
    assert m.spacing_source == USER_CALIBRATED and m.unit == "mm"
    assert m.longest_diameter == pytest.approx(px_longest * 0.1)
    texts = w.panel.measurement_texts()
    assert texts["longest"].endswith(" mm") and texts["area"].endswith(" mm\u00b2")
    assert "user calibrated" in w.panel.size_note.text().lower()
    assert "USER CALIBRATED" in w.panel.size_title.text()
    assert w.viewer.has_overlay()
    assert w.tools.calibrate_action.isEnabled()  # to change or remove it
    assert CalibrationStore().get(rec.sha256) == pytest.approx((0.1, 0.1))

    # The slot the dialog's `removed` signal drives: back to pixels.
    CalibrationStore().remove(rec.sha256)
    w.tools.on_calibration_removed()
    assert w.panel.measurement_texts()["longest"].endswith(" px")
    assert "user calibrated" not in w.panel.size_note.text().lower()

    # And `calibrated`, called directly (store written first, as the dialog does).
    CalibrationStore().set(rec.sha256, (0.2, 0.2))
    w.tools.on_calibrated(0.2, 0.2)
    assert rec.analysis.measurements.longest_diameter == pytest.approx(px_longest * 0.2)
    log = (_private_data_dir / "audit.jsonl").read_text(encoding="utf-8")
    assert any(json.loads(line)["action"] == "calibration" for line in log.splitlines())


def test_calipers_toggle_in_the_view_menu(lesion_window: MainWindow) -> None:
    w = lesion_window
    a = w.toggle_calipers_action
    assert a in w.view_menu.actions() and a.isChecked()
    a.trigger()
    assert not w.overlay_controls.calipers_box.isChecked() and not w.settings.show_calipers
    w.overlay_controls.set_calipers(True)
    assert a.isChecked()


def test_batch_dialog_opens_once_from_the_menu_and_stops_with_the_window(qtbot, window: MainWindow) -> None:
    window.tools.batch_action.trigger()
    dlg = window.tools.batch_dialog
    assert dlg is not None and dlg.isVisible() and not dlg.isModal()
    window.tools.batch_action.trigger()
    assert window.tools.batch_dialog is dlg
    window.close()
    assert dlg.is_stopped()


def test_initial_size_fits_small_screens(qtbot, tmp_path: Path) -> None:
    small = initial_window_size(QRect(0, 0, 1366, 728))  # 1366x768 less a 40 px task bar
    assert small.width() <= 0.9 * 1366 and small.height() <= 0.9 * 728
    assert initial_window_size(QRect(0, 0, 2560, 1400)) == QSize(1440, 900)

    w = MainWindow(make_settings(tmp_path / "fresh.ini"))  # no saved geometry
    qtbot.addWidget(w)
    avail = w.screen().availableGeometry()
    assert w.width() <= max(800, avail.width() * 0.9) and w.height() <= max(560, avail.height() * 0.9)
    # Everything still fits at the small size: the side panel scrolls, the disclaimer stays.
    hint = w.minimumSizeHint()
    assert hint.width() <= small.width() and hint.height() <= small.height()
    w.resize(small)
    w.show()
    qtbot.waitExposed(w)
    assert w.disclaimer.isVisible()
    assert w.viewer.width() > 400
    w.close()
    assert w.worker_thread.wait(20_000)


def test_screenshot_result_with_calipers_and_file_menu(qtbot, lesion_window: MainWindow, artifacts: Path) -> None:
    w = lesion_window
    w.resize(initial_window_size(QRect(0, 0, 1366, 728)))
    qtbot.wait(50)
    assert w.viewer.has_overlay() and w.toggle_calipers_action.isChecked()
    w.grab().save(str(artifacts / "wiring_main_window.png"))
    w.file_menu.popup(w.mapToGlobal(w.rect().topLeft()))
    qtbot.waitUntil(w.file_menu.isVisible, timeout=2000)
    w.file_menu.grab().save(str(artifacts / "wiring_file_menu.png"))
    w.file_menu.hide()
