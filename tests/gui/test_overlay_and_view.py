"""Overlay opacity/style/toggle change what is rendered; zoom; settings persist; About; panel states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_helpers import drop, image_bytes, make_settings, render, wait_all_done
from PySide6.QtCore import Qt

from busapp.core.predictor import Prediction
from busapp.gui.about import AboutDialog, model_card_html
from busapp.gui.main_window import MainWindow
from busapp.gui.prediction_panel import PredictionPanel
from busapp.gui.worker import Analysis


@pytest.fixture
def window_with_lesion(qtbot, window, sample_images):
    """A window showing a sample on which the model outlined something (skip if it outlines nothing)."""
    drop(window, sample_images)
    wait_all_done(qtbot, window, n=len(sample_images))
    recs = [r for r in window.records() if r.analysis and r.analysis.fill is not None]
    if not recs:
        pytest.skip("the current model outlines nothing on the samples")
    window.image_list.select_job(recs[0].job_id)
    qtbot.wait(20)
    assert window.viewer.has_overlay()
    return window


def _differs(a, b) -> int:
    x = np.frombuffer(image_bytes(a), np.uint8)
    y = np.frombuffer(image_bytes(b), np.uint8)
    return int(np.count_nonzero(x != y))


def test_opacity_slider_changes_the_rendered_overlay(window_with_lesion) -> None:
    w = window_with_lesion
    vp = w.viewer.viewport()
    slider = w.overlay_controls.slider
    assert slider.value() == 50  # default opacity about 0.5
    w.overlay_controls.set_mode("fill")
    w.overlay_controls.set_calipers(False)  # the measured axes do not follow the opacity
    slider.setValue(50)
    half = render(vp)
    slider.setValue(90)
    strong = render(vp)
    assert w.viewer.overlay_opacity() == pytest.approx(0.9)
    assert _differs(half, strong) > 100
    slider.setValue(0)
    invisible = render(vp)
    w.overlay_controls.set_overlay_visible(False)
    hidden = render(vp)
    assert _differs(invisible, hidden) == 0  # opacity 0 = no overlay at all
    assert "0 %" in w.overlay_controls.value_label.text()


def test_fill_outline_and_toggle_key(qtbot, window_with_lesion) -> None:
    w = window_with_lesion
    vp = w.viewer.viewport()
    w.overlay_controls.set_calipers(False)
    shots = {}
    for mode in ("both", "fill", "outline"):
        w.overlay_controls.mode_buttons[mode].click()
        assert w.overlay_controls.mode() == mode
        shots[mode] = render(vp)
    assert _differs(shots["fill"], shots["outline"]) > 100
    assert _differs(shots["both"], shots["fill"]) > 0
    assert _differs(shots["both"], shots["outline"]) > 0

    # G hides the overlay (like Slicer), G again shows it.
    w.activateWindow()
    w.viewer.setFocus()
    qtbot.keyClick(w.viewer, Qt.Key.Key_G)
    if w.viewer.overlay_visible():  # no keyboard focus on this platform: use the same action
        w.toggle_overlay_action.trigger()
    assert not w.viewer.overlay_visible()
    assert not w.overlay_controls.show_box.isChecked()
    off = render(vp)
    assert _differs(off, shots["outline"]) > 0
    w.toggle_overlay_action.trigger()
    assert w.viewer.overlay_visible()
    assert _differs(render(vp), shots["outline"]) == 0


def test_zoom_fit_and_actual_size(window_with_lesion) -> None:
    v = window_with_lesion.viewer
    fit = v.zoom()
    v.zoom_in()
    assert v.zoom() > fit
    v.actual_size()
    assert v.zoom() == pytest.approx(1.0)
    v.zoom_out()
    assert v.zoom() < 1.0
    v.fit()
    assert v.zoom() == pytest.approx(fit, rel=1e-3)
    assert "Zoom" in window_with_lesion.zoom_label.text()


def test_ctrl_wheel_zooms_and_plain_wheel_does_not(window_with_lesion) -> None:
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    v = window_with_lesion.viewer
    v.fit()
    before = v.zoom()

    def wheel(mods: Qt.KeyboardModifier) -> None:
        pos = QPointF(v.viewport().rect().center())
        ev = QWheelEvent(pos, QPointF(v.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120),
                         Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(v.viewport(), ev)

    wheel(Qt.KeyboardModifier.NoModifier)
    assert v.zoom() == pytest.approx(before)
    wheel(Qt.KeyboardModifier.ControlModifier)
    assert v.zoom() > before


def test_settings_persist_between_runs(qtbot, make_window, tmp_path: Path) -> None:
    ini = tmp_path / "persist.ini"
    w1 = make_window(settings_path=ini)
    w1.overlay_controls.set_opacity(0.3)
    w1.overlay_controls.set_mode("outline")
    w1.overlay_controls.set_overlay_visible(False)
    sizes = w1.splitter.sizes()
    w1.splitter.setSizes([300, sizes[1] - 70, sizes[2] - 30 + 100])
    saved_sizes = w1.splitter.sizes()
    w1.settings.last_folder = str(tmp_path)
    w1.close()

    s = make_settings(ini)
    assert s.overlay_opacity == pytest.approx(0.3)
    assert s.overlay_mode == "outline"
    assert s.overlay_visible is False
    assert s.last_folder == str(tmp_path)
    w2 = make_window(settings_path=ini)
    assert w2.overlay_controls.opacity() == pytest.approx(0.3)
    assert w2.overlay_controls.mode() == "outline"
    assert not w2.viewer.overlay_visible()
    assert w2.splitter.sizes() == saved_sizes


def test_about_shows_version_model_card_and_licences(qtbot, bundle_dir) -> None:
    from busapp import __version__
    from busapp.core.model_bundle import load_bundle

    card = load_bundle(bundle_dir, verify=False).card
    html = model_card_html(card)
    assert card["name"] in html and card["version"] in html
    acc = card["metrics"]["test"]["accuracy"]["value"]
    assert f"{acc:.2f}" in html
    dlg = AboutDialog(card)
    qtbot.addWidget(dlg)
    text = dlg.browser.toPlainText()
    assert "CC BY 4.0" in text and "Apache-2.0" in text
    assert "Limitations" in text
    assert f"busapp {__version__}" in dlg.title_label.text()
    # Defect 10 (issue 25): application and model versions are each named as such, and the
    # training data reads as sentences (busnet 2's card lists them as mappings: shown as dicts).
    assert f"Application: busapp {__version__}" in dlg.title_label.text()
    assert f"Model: {card['name']} {card['version']}" in dlg.title_label.text()
    assert "{'" not in text and "'site':" not in text
    data = card["training"]["data"]
    for d in data if isinstance(data[0], dict) else ():
        assert f"{d['images']} images" in text

    # A card with cross-validation figures shows them beside the test figures, said for what they are.
    cv_card = {**card, "cross_validation": {"n_images": 762, "figures": {"accuracy": 0.777, "macro_f1": 0.6543}}}
    cv_html = model_card_html(cv_card)
    assert "cross-val." in cv_html and "762 development images" in cv_html
    assert ">&nbsp;0.78</td>" in cv_html and ">&nbsp;0.65</td>" in cv_html
    assert "cross-val." not in model_card_html({**card, "cross_validation": None})

    # Per-site test figures, when the card has them; a figure a site cannot give stays blank.
    sites = {"busi": {"n_images": 97, "metrics": {"accuracy": {"value": 0.912}, "ece": {"value": None},
                                                  "auc_benign_vs_malignant": {"value": 0.996}}},
             "breast_lesions_usg": {"n_images": 39, "metrics": {"accuracy": {"value": 0.733}}}}
    site_html = model_card_html({**card, "metrics": {**card["metrics"], "test_by_dataset": sites}})
    assert "by site" in site_html and "BUSI (Egypt) (97)" in site_html and "BrEaST (Poland) (39)" in site_html
    assert "<td align='right'>0.91</td><td align='right'>0.73</td>" in site_html
    assert "<td align='right'>0.996</td>" in site_html  # not a perfect-looking 1.00
    assert "by site" not in model_card_html({**card, "metrics": {"test": card["metrics"]["test"]}})


def _analysis(probs: dict[str, float], low: bool) -> Analysis:
    label = max(probs, key=probs.__getitem__)
    pred = Prediction(label, probs, np.zeros((4, 4), bool), "busnet", "9.9.9", low)
    return Analysis(pred, None, None, __import__("PySide6.QtGui", fromlist=["QPainterPath"]).QPainterPath(), 0.01)


def test_panel_low_confidence_state_is_visible(qtbot, artifacts) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_model("busnet", "9.9.9", 0.6)
    panel.show_result(_analysis({"normal": 0.1, "benign": 0.46, "malignant": 0.44}, low=True))
    panel.resize(320, 520)
    panel.show()
    assert panel.low_confidence.isVisible()
    assert "Uncertain" in panel.class_line.text() and "benign" in panel.class_line.text()
    assert "0.60" in panel.low_confidence.text()
    assert "outlined no region" in panel.size_note.text()
    panel.grab().save(str(artifacts / "panel_low_confidence.png"))
    panel.show_result(_analysis({"normal": 0.05, "benign": 0.14, "malignant": 0.81}, low=False))
    assert not panel.low_confidence.isVisible()
    assert panel.class_line.text() == "Most probable class: malignant (0.81)"
    assert "p(malignant) 0.81" in panel.headline.text()


def test_open_paths_is_the_shared_entry(qtbot, window: MainWindow, sample_images) -> None:
    ids = window.open_paths([str(sample_images[0])])
    assert len(ids) == 1
    assert window.open_paths([sample_images[0]]) == []  # already open
    wait_all_done(qtbot, window, n=1)
    got = []
    window.current_changed.connect(got.append)
    window.clear_images()
    assert window.records() == [] and window.current_record() is None
    assert window.panel.state == "empty"


def test_panel_says_why_an_outline_is_withheld(qtbot) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_model("busnet", "9.9.9", 0.6)
    note = "No outline: the model gives normal a probability of 0.31 (outlines are withheld from 0.20)."
    pred = Prediction("benign", {"normal": 0.31, "benign": 0.52, "malignant": 0.17}, np.zeros((4, 4), bool),
                      "busnet", "9.9.9", True, outline_note=note)
    panel.show_result(Analysis(pred, None, None, __import__("PySide6.QtGui", fromlist=["QPainterPath"]).QPainterPath(), 0.01))
    assert panel.size_note.text() == note
    panel.show_result(_analysis({"normal": 0.05, "benign": 0.14, "malignant": 0.81}, low=False))
    assert "outlined no region" in panel.size_note.text()  # no note: the plain message returns
