"""Issue 25's defects list, each with a test that failed before its fix."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QApplication, QMenu, QPushButton


def _array(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, : img.width(), :3].astype(int)


def _text_brightness(a: np.ndarray) -> float:
    """How bright the text is: the mean of the brightest 2 % of pixels (the glyphs on a dark theme)."""
    lum = a.mean(axis=2).ravel()
    return float(np.sort(lum)[-max(1, lum.size // 50):].mean())


def test_1_disabled_menu_items_and_buttons_look_disabled(qtbot) -> None:
    menu = QMenu()
    qtbot.addWidget(menu)
    on, off = QAction("Export report", menu), QAction("Export report", menu)
    off.setEnabled(False)
    menu.addAction(on)
    menu.addAction(off)
    menu.popup(menu.pos())
    qtbot.waitExposed(menu)
    QApplication.processEvents()
    img = _array(menu.grab().toImage())
    g_on, g_off = menu.actionGeometry(on), menu.actionGeometry(off)
    r = menu.devicePixelRatioF()
    row = lambda g: img[int(g.top() * r): int(g.bottom() * r), int(g.left() * r): int(g.right() * r)]  # noqa: E731
    assert _text_brightness(row(g_off)) < _text_brightness(row(g_on)) - 40
    menu.close()
    for name in ("segment", ""):
        a, b = QPushButton("Brush"), QPushButton("Brush")
        for btn in (a, b):
            btn.setObjectName(name)
            qtbot.addWidget(btn)
            btn.resize(100, 28)
        b.setEnabled(False)
        assert _text_brightness(_array(b.grab().toImage())) < _text_brightness(_array(a.grab().toImage())) - 40


def _measurements(longest: float, unit: str = "mm", source: str | None = "DICOM Pixel Spacing"):
    from busapp.core.measure import LesionMeasurements

    return LesionMeasurements(area=23.456, area_unit="mm\u00b2" if unit == "mm" else "px\u00b2",
                              longest_diameter=longest, perpendicular_diameter=3.333, unit=unit,
                              depth_to_width=0.8123, longest_axis=((0, 0), (5, 0)),
                              perpendicular_axis=((2, -1), (2, 1)), spacing_source=source)


def test_3_panel_and_pdf_say_the_same_numbers_in_one_wording(qtbot, sample_images) -> None:
    from busapp.core.imageio import load_image
    from busapp.core.predictor import Prediction
    from busapp.gui.prediction_panel import PredictionPanel
    from busapp.report.pdf import build_report_data, report_text

    m = _measurements(5.66)
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_measurements(m)
    shown = panel.measurement_texts()
    loaded = load_image(sample_images[0])
    pred = Prediction("benign", {"normal": 0.05, "benign": 0.917, "malignant": 0.033},
                      np.zeros((loaded.height, loaded.width), bool), "busnet", "1", False)
    text = "\n".join(report_text(build_report_data(loaded, pred, m, {}, sha256="0" * 64)))
    assert shown["longest"] == "5.7 mm" and "Longest diameter: 5.7 mm" in text
    assert shown["perpendicular"] == "3.3 mm" and "Perpendicular diameter: 3.3 mm" in text
    assert shown["area"] == "23.5 mm\u00b2" and "Area: 23.5 mm\u00b2" in text
    assert "benign: 0.92" in text and "%" not in text.split("Model:")[0].split("Frame:")[1]
    px = _measurements(5.66, "px", None)
    panel.set_measurements(px)
    text = "\n".join(report_text(build_report_data(loaded, pred, px, {}, sha256="0" * 64)))
    assert "Pixel size: pixel size" not in text and "Pixel size unknown, so sizes are in pixels" in text
    assert panel.size_note.text().startswith("Pixel size unknown, so sizes are in pixels")


def test_4_unreadable_files_are_not_reported_as_opened(qtbot, window, tmp_path) -> None:
    from gui_helpers import drop, wait_all_done

    bad = []
    for i in range(3):
        f = tmp_path / f"scan{i}.png"
        f.write_bytes(b"not an image at all " * 10)
        bad.append(f)
    drop(window, bad)
    wait_all_done(qtbot, window, n=3)
    qtbot.waitUntil(lambda: "opened" in window.statusBar().currentMessage())
    assert "Opened 3" not in window.statusBar().currentMessage()
    assert window.statusBar().currentMessage() == "None of the 3 files could be opened."


def test_4_summary_wording() -> None:
    from busapp.core.wording import opened_summary

    assert opened_summary(2, 0) == "Opened 2 images."
    assert opened_summary(1, 2) == "Opened 1 image; 2 files could not be opened."
    assert opened_summary(0, 1) == "The file could not be opened."


def test_5_opacity_zero_draws_no_outline_and_no_calipers(qtbot, window, sample_images) -> None:
    from gui_helpers import drop, render, wait_all_done

    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    oc = window.overlay_controls
    oc.set_mode("both")
    oc.set_calipers(True)
    oc.set_opacity(0.0)
    zero = _array(render(window.viewer.viewport()))
    oc.set_overlay_visible(False)
    hidden = _array(render(window.viewer.viewport()))
    assert int(np.count_nonzero(zero != hidden)) == 0
    oc.set_overlay_visible(True)
    oc.set_opacity(0.1)
    faint = _array(render(window.viewer.viewport()))
    assert int(np.count_nonzero(faint != hidden)) > 50  # a low opacity still shows the outline


def test_6_status_bar_zoom_cleared_after_close_all(qtbot, window, sample_images) -> None:
    from gui_helpers import drop, wait_all_done

    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    window.viewer.zoom_in()
    assert window.zoom_label.text().startswith("Zoom")
    window.clear_images()
    assert window.zoom_label.text() == ""


def test_10_export_dialog_starts_in_the_images_folder(qtbot, window, sample_images, tmp_path, monkeypatch) -> None:
    import shutil

    from gui_helpers import drop, wait_all_done
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "patient-images"
    folder.mkdir()
    img = folder / sample_images[0].name
    shutil.copyfile(sample_images[0], img)
    drop(window, [img])
    wait_all_done(qtbot, window, n=1)
    proposed: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda p, t, s, f: (proposed.append(s), ("", ""))[1])
    window.settings.last_export_folder = ""
    window.exports.export_report()
    from pathlib import Path

    assert Path(proposed[0]).parent == folder


def test_2_caliper_labels_stay_inside_the_image(qapp) -> None:
    from busapp.core.measure import measure_mask
    from busapp.report.render import render_overlay

    h, w = 200, 300
    img = np.full((h, w), 90, np.uint8)

    def label_pixels(x0: int) -> int:
        m = np.zeros((h, w), bool)
        m[80:120, x0:x0 + 60] = True  # a wide box: D1 ends at its right side
        meas = measure_mask(m, None)
        with_labels = _array(render_overlay(img, m, meas, labels=True))
        without = _array(render_overlay(img, m, meas, labels=False))
        return int(np.count_nonzero((with_labels != without).any(axis=2)))

    centre, at_edge = label_pixels(100), label_pixels(w - 60)
    assert centre > 100
    assert at_edge > 0.8 * centre  # the label is drawn whole, not cut at the right edge


def test_8_calibration_dialog_opens_large_fitted_and_zooms(qtbot, window, sample_images) -> None:
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent

    from busapp.gui.calibration import CalibrationDialog

    img = np.full((120, 90), 100, np.uint8)  # a small image: at 1:1 its ticks would be tiny
    dlg = CalibrationDialog(img, "ab" * 32, window)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    QApplication.processEvents()
    assert dlg.width() >= 0.7 * window.width() and dlg.height() >= 0.7 * window.height()
    v = dlg.view
    shown = v.mapFromScene(v.sceneRect()).boundingRect()
    vp = v.viewport().rect()
    assert abs(shown.height() - vp.height()) <= 3 or abs(shown.width() - vp.width()) <= 3  # fitted
    assert v.zoom() > 2.0
    z = v.zoom()
    centre = QPointF(vp.center())
    ev = QWheelEvent(centre, v.viewport().mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(v.viewport(), ev)
    assert v.zoom() > z * 1.4
    dlg.reject()


def test_9_layout_at_1100_by_650_keeps_the_image_wide_and_the_overlay_controls_visible(
        qtbot, make_window, sample_images) -> None:
    from gui_helpers import drop, wait_all_done

    w = make_window()
    w.resize(1100, 650)
    drop(w, sample_images[:1])
    wait_all_done(qtbot, w, n=1)
    QApplication.processEvents()
    assert w.viewer.width() >= 560
    oc = w.overlay_controls
    assert oc.isVisible()
    visible = oc.visibleRegion().boundingRect()
    assert visible.width() >= oc.width() - 1 and visible.height() >= oc.height() - 1  # not scrolled away
    for child in (oc.slider, oc.show_box, oc.calipers_box, *oc.mode_buttons.values()):
        assert not child.visibleRegion().isEmpty()


def test_9_long_names_show_whole_in_the_list_and_never_widen_the_panel(
        qtbot, window, sample_images, tmp_path, artifacts) -> None:
    """Names and results were cut in a 200 px list beside a wide image; one long name widened the
    side panel past the window, cutting the risk headline and the measurements off."""
    import shutil

    from gui_helpers import drop, wait_all_done

    name = "US_2026-11-30_left_radial_01.png"
    shutil.copyfile(sample_images[0], tmp_path / name)
    window.resize(1440, 820)  # room to spare: the image keeps half of it
    drop(window, [tmp_path / name])
    wait_all_done(qtbot, window, n=1)
    QApplication.processEvents()
    lst = window.image_list
    _, fm, _, fm2 = lst.itemDelegate().fonts(lst.font())
    text_w = lst.viewport().width() - 8 - 52 - 10 - 8
    assert fm.elidedText(name, Qt.TextElideMode.ElideMiddle, text_w) == name
    assert fm2.horizontalAdvance(lst.detail(lst.job_ids()[0])) <= text_w - 12
    assert window.viewer.width() >= 600
    panel = window.panel
    scroll_viewport = panel.parentWidget().parentWidget()
    assert panel.width() <= scroll_viewport.width()  # nothing in the panel runs past the window
    assert panel.image_title.toolTip() == name and panel.image_title.shown_text() != name
    window.grab().save(str(artifacts / "defect9_long_names.png"))


def test_7_cine_loop_summary_is_steady_across_frames(qtbot, window, sample_images, tmp_path) -> None:
    from gui_helpers import drop, make_cine, wait_all_done

    from busapp.gui.cine import loop_summary

    cine = make_cine(sample_images[0], tmp_path / "loop.dcm", n=4)
    drop(window, [cine])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    for k in (1, 2):
        window.cine.select_frame(k)
        qtbot.waitUntil(lambda k=k: rec.frames.get(k) is not None and rec.frames[k].analysis is not None,
                        timeout=60_000)
    text = window.frame_control.summary.text()
    ps = sorted(rec.frames[k].analysis.prediction.probabilities["malignant"] for k in (0, 1, 2))
    assert text.startswith("Loop: 3 of 4 frames analysed") and f"{ps[0]:.2f}" in text and f"{ps[-1]:.2f}" in text
    window.cine.select_frame(0)  # back to a cached frame: the headline may change, the summary does not
    assert window.frame_control.summary.text() == text
    assert loop_summary({0: (0.55, True, None), 1: (0.62, False, None)}, 9) == (
        "Loop: 2 of 9 frames analysed \u00b7 p(malignant) 0.55\u20130.62, median 0.58 \u00b7 uncertain in 1")
