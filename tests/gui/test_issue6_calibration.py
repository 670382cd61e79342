"""User calibration: draw a line over the depth scale, type its length, remembered per image (sha256)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QDialogButtonBox

from busapp.core.audit import AuditLog
from busapp.core.measure import CalibrationStore, measure_image, spacing_from_line
from busapp.gui.calibration import CalibrationDialog

SHA = hashlib.sha256(b"an image").hexdigest()


def image() -> np.ndarray:
    a = np.full((400, 300), 40, np.uint8)
    a[50:350:50, 280:290] = 255  # tick marks of a depth scale, every 50 px
    return a


def test_spacing_from_line() -> None:
    assert spacing_from_line((10, 20), (10, 220), 40.0) == pytest.approx((0.2, 0.2))
    assert spacing_from_line((0, 0), (30, 40), 5.0) == pytest.approx((0.1, 0.1))
    for bad in [((0, 0), (0, 2), 10.0), ((0, 0), (0, 100), 0.0), ((0, 0), (0, 100), float("nan"))]:
        with pytest.raises(ValueError):
            spacing_from_line(*bad)


def test_calibration_dialog_stores_per_image(qtbot, tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "calibrations.json")
    audit = AuditLog(tmp_path / "audit.jsonl")
    dlg = CalibrationDialog(image(), SHA, store=store, audit=audit)
    qtbot.addWidget(dlg)
    dlg.resize(500, 600)
    dlg.show()
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and not dlg.remove_button.isEnabled()

    # Drag on the image: press at one tick, release at another.
    view = dlg.view
    a = view.mapFromScene(QPointF(285, 50))
    b = view.mapFromScene(QPointF(285, 300))
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=b)
    assert dlg.line_pixels() == pytest.approx(250, abs=3)  # view scaling rounds to screen pixels
    assert not ok.isEnabled()  # no length yet
    dlg.length_spin.setValue(25.0)  # 250 px = 25 mm
    assert ok.isEnabled() and "user calibrated" in dlg.result_label.text()

    with qtbot.waitSignal(dlg.calibrated) as sig:
        ok.click()
    row_mm, col_mm = sig.args
    assert row_mm == pytest.approx(0.1, rel=0.02) and row_mm == col_mm
    assert store.get(SHA) == pytest.approx((row_mm, col_mm))
    saved = json.loads((tmp_path / "calibrations.json").read_text(encoding="utf-8"))
    assert saved[SHA]["source"] == "user calibrated" and saved[SHA]["length_mm"] == 25.0
    assert store.get(hashlib.sha256(b"another image").hexdigest()) is None  # per image
    rec = json.loads((tmp_path / "audit.jsonl").read_text(encoding="utf-8"))
    assert rec["action"] == "calibration" and rec["sha256"] == SHA

    # Reopened: the line and length come back; "Remove" forgets it.
    again = CalibrationDialog(image(), SHA, store=store)
    qtbot.addWidget(again)
    assert again.line_pixels() == pytest.approx(dlg.line_pixels())
    assert again.length_spin.value() == 25.0 and again.remove_button.isEnabled()
    with qtbot.waitSignal(again.removed):
        again.remove_button.click()
    assert store.get(SHA) is None


def test_measurements_use_the_calibration(tmp_path: Path) -> None:
    class Loaded:  # a PNG: no spacing of its own
        pixel_spacing_mm = None
        spacing_source = None
        us_regions: list = []  # noqa: RUF012
        width, height = 300, 400

    store = CalibrationStore(tmp_path / "c.json")
    mask = np.zeros((400, 300), bool)
    mask[100:200, 50:250] = True
    assert measure_image(Loaded(), mask, SHA, store).unit == "px"
    store.set(SHA, (0.1, 0.1))
    m = measure_image(Loaded(), mask, SHA, store)
    assert (m.unit, m.spacing_source) == ("mm", "user calibrated")
    assert m.area == pytest.approx(100 * 200 * 0.01)
    (tmp_path / "c.json").write_text("{ damaged")
    assert store.get(SHA) is None  # a damaged file means "not calibrated", not a crash
