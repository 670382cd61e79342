"""The reader's outline edits: the Qt-free mask model (undo/redo, polygon, store) and the viewer's
brush, eraser and polygon tools changing the mask and the measurements in a real window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_helpers import drop, wait_all_done
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from busapp.gui.mask_edit import MaskEditor, OutlineEditStore, decode_rle, encode_rle

SHA = "ab" * 32


def test_brush_paints_a_gapless_capsule_and_undo_redo_restore_it() -> None:
    ed = MaskEditor(np.zeros((50, 80), bool))
    ed.begin_stroke()
    ed.paint(10, 25, 10, 25, 3)
    ed.paint(10, 25, 60, 25, 3)  # a fast move: one long segment, still no gap
    assert ed.end_stroke()
    m = ed.mask.copy()
    assert m[25, 10:60].all() and not m[25, 70] and not m[10, 30]
    assert ed.edited and ed.can_undo() and not ed.can_redo()
    assert ed.undo() and not ed.mask.any() and not ed.edited
    assert ed.redo() and np.array_equal(ed.mask, m)
    ed.paint(30, 25, 30, 25, 5, value=False)  # eraser, an implicit one-step stroke
    assert not ed.mask[25, 30] and ed.mask[25, 12]
    assert ed.undo() and np.array_equal(ed.mask, m)


def test_a_stroke_that_changes_nothing_is_no_undo_step() -> None:
    ed = MaskEditor(np.zeros((20, 20), bool))
    ed.begin_stroke()
    ed.paint(5, 5, 5, 5, 2, value=False)
    assert not ed.end_stroke() and not ed.can_undo()


def test_polygon_fills_inside_only_and_clears_with_value_false() -> None:
    ed = MaskEditor(np.zeros((40, 40), bool))
    assert ed.fill_polygon([(5, 5), (35, 5), (35, 35), (5, 35)])
    assert ed.mask[5:35, 5:35].all() and not ed.mask[:5].any() and not ed.mask[:, 35:].any()
    assert ed.fill_polygon([(10, 10), (20, 10), (20, 20)], value=False)  # a triangle cut out
    assert not ed.mask[11, 18] and ed.mask[18, 11]
    ed.undo()
    assert ed.mask[11, 18]


def test_reset_to_model_and_new_edits_clear_redo() -> None:
    model = np.zeros((30, 30), bool)
    model[10:20, 10:20] = True
    ed = MaskEditor(model)
    ed.clear()
    assert not ed.mask.any() and ed.edited
    ed.undo()
    ed.paint(2, 2, 2, 2, 1)
    assert not ed.can_redo()
    ed.reset_to_model()
    assert not ed.edited and np.array_equal(ed.mask, model)


def test_rle_round_trip_and_store_is_keyed_by_sha256(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for m in (rng.random((17, 23)) > 0.5, np.ones((3, 4), bool), np.zeros((3, 4), bool)):
        assert np.array_equal(decode_rle(encode_rle(m), m.shape), m)
    with pytest.raises(ValueError):
        decode_rle([1, 2], (3, 4))
    store = OutlineEditStore(tmp_path / "edits")
    mask = rng.random((30, 40)) > 0.7
    store.put(SHA, 2, mask, reader="Dr Who")
    got = store.get(SHA, 2)
    assert got is not None and np.array_equal(got.mask, mask) and got.reader == "Dr Who"
    assert store.get(SHA, 0) is None and store.get("cd" * 32, 2) is None
    assert [p.name for p in (tmp_path / "edits").iterdir()] == [f"{SHA}.json"]  # no temp files left
    store.remove(SHA, 2)
    assert store.get(SHA, 2) is None and not (tmp_path / "edits" / f"{SHA}.json").exists()
    with pytest.raises(ValueError):
        store.put("../x", 0, mask)  # never a name or path as the key


def test_damaged_store_file_means_no_edit(tmp_path: Path) -> None:
    store = OutlineEditStore(tmp_path)
    (tmp_path / f"{SHA}.json").write_text('{"frames": {"0": {"shape": [2, 2], "counts": [9]}}}')
    assert store.get(SHA, 0) is None


# --- in the window -------------------------------------------------------------------------------


def _send(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton,
          buttons=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier) -> None:
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, mods)
    QApplication.sendEvent(widget, ev)


def drag(viewer, points: list[tuple[float, float]]) -> None:
    """Press at the first scene point, move through the rest, release at the last (real events)."""
    vp = viewer.viewport()
    pts = [QPointF(viewer.mapFromScene(QPointF(x, y))) for x, y in points]
    _send(vp, QEvent.Type.MouseButtonPress, pts[0])
    for p in pts[1:]:
        _send(vp, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton)
    _send(vp, QEvent.Type.MouseButtonRelease, pts[-1], buttons=Qt.MouseButton.NoButton)
    QApplication.processEvents()


def click(viewer, x: float, y: float) -> None:
    vp = viewer.viewport()
    p = QPointF(viewer.mapFromScene(QPointF(x, y)))
    _send(vp, QEvent.Type.MouseButtonPress, p)
    _send(vp, QEvent.Type.MouseButtonRelease, p, buttons=Qt.MouseButton.NoButton)


@pytest.fixture
def shown(qtbot, window, sample_images):
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    assert rec.analysis is not None
    return window, rec


def test_brush_stroke_changes_the_mask_and_the_measurements(qtbot, shown, artifacts) -> None:
    w, rec = shown
    v = w.viewer
    before_mask = rec.analysis.prediction.mask.copy()
    before_m = rec.analysis.measurements
    before_text = w.panel.measurement_texts()
    _h, wd = before_mask.shape
    w.outline_edit.set_tool("brush")
    assert v.edit_tool() == "brush"
    v.set_brush_radius(6)
    assert before_mask.any(), "the first sample should have a model outline"
    # A stroke from inside the lesion out past its right edge: the lesion grows.
    ys, xs = np.nonzero(before_mask)
    y, x0, x1 = float(np.median(ys)), float(np.median(xs)), min(wd - 8.0, xs.max() + 40.0)
    drag(v, [(x0 + (x1 - x0) * i / 10, y) for i in range(11)])
    a = rec.analysis
    assert a is not w.outline_edit.model_analysis(rec)
    painted = a.prediction.mask & ~before_mask
    assert painted.sum() > 0.5 * (x1 - xs.max()) * 12  # about length x width of the stroke outside
    assert a.measurements.area > before_m.area and a.measurements.longest_diameter > before_m.longest_diameter
    assert w.panel.measurement_texts() != before_text  # the panel followed at once
    assert "EDITED BY READER" in w.panel.size_title.text()
    assert w.outline_edit.is_edited(rec)
    v.grab().save(str(artifacts / "reader_brush_stroke.png"))
    # Undo brings back the model's outline and its measurements; redo the edit.
    w.outline_edit.undo()
    assert np.array_equal(rec.analysis.prediction.mask, before_mask)
    assert rec.analysis.measurements == before_m and "EDITED" not in w.panel.size_title.text()
    w.outline_edit.redo()
    assert np.array_equal(rec.analysis.prediction.mask, a.prediction.mask)


def test_eraser_polygon_and_brush_keys(qtbot, shown) -> None:
    w, rec = shown
    v = w.viewer
    h, wd = rec.analysis.prediction.mask.shape
    w.outline_edit.set_tool("polygon")
    box = [(0.3 * wd, 0.3 * h), (0.7 * wd, 0.3 * h), (0.7 * wd, 0.7 * h), (0.3 * wd, 0.7 * h)]
    for x, y in box:
        click(v, x, y)
    assert len(v.polygon_points()) == 4
    v.setFocus()
    qtbot.keyClick(v, Qt.Key.Key_Return)
    m = rec.analysis.prediction.mask
    assert m[int(0.5 * h), int(0.5 * wd)] and m[int(0.35 * h), int(0.65 * wd)]
    # Eraser through the middle
    w.outline_edit.set_tool("eraser")
    v.set_brush_radius(4)
    drag(v, [(0.35 * wd, 0.5 * h), (0.65 * wd, 0.5 * h)])
    assert not rec.analysis.prediction.mask[int(0.5 * h), int(0.5 * wd)]
    r = v.brush_radius()
    w.outline_edit.larger_action.trigger()
    assert v.brush_radius() > r
    w.outline_edit.smaller_action.trigger()
    w.outline_edit.smaller_action.trigger()
    assert v.brush_radius() < r
    # A freehand lasso with Shift clears what it encloses.
    w.outline_edit.set_tool("polygon")
    vp = v.viewport()
    loop = [(0.32 * wd, 0.32 * h), (0.5 * wd, 0.32 * h), (0.5 * wd, 0.45 * h), (0.32 * wd, 0.45 * h)]
    pts = [QPointF(v.mapFromScene(QPointF(x, y))) for x, y in loop]
    shift = Qt.KeyboardModifier.ShiftModifier
    _send(vp, QEvent.Type.MouseButtonPress, pts[0], mods=shift)
    for p in pts[1:]:
        _send(vp, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, mods=shift)
    _send(vp, QEvent.Type.MouseButtonRelease, pts[-1], buttons=Qt.MouseButton.NoButton, mods=shift)
    assert not rec.analysis.prediction.mask[int(0.38 * h), int(0.4 * wd)]
    assert rec.analysis.prediction.mask[int(0.6 * h), int(0.6 * wd)]


def test_edit_is_restored_when_the_image_is_opened_again(qtbot, make_window, sample_images) -> None:
    w = make_window()
    drop(w, sample_images[:1])
    wait_all_done(qtbot, w, n=1)
    rec = w.records()[0]
    model_mask = rec.analysis.prediction.mask.copy()
    h, wd = model_mask.shape
    w.outline_edit.set_tool("brush")
    w.viewer.set_brush_radius(5)
    drag(w.viewer, [(0.1 * wd, 0.1 * h), (0.3 * wd, 0.1 * h)])
    edited = rec.analysis.prediction.mask.copy()
    assert not np.array_equal(edited, model_mask)
    w.clear_images()
    assert not w.viewer.has_image()
    drop(w, sample_images[:1])
    wait_all_done(qtbot, w, n=1)
    rec2 = w.records()[0]
    qtbot.waitUntil(lambda: w.outline_edit.is_edited(rec2))
    assert np.array_equal(rec2.analysis.prediction.mask, edited)
    assert "EDITED BY READER" in w.panel.size_title.text()
    # Reset to the model's outline forgets the stored edit.
    w.outline_edit.reset_to_model()
    assert np.array_equal(rec2.analysis.prediction.mask, model_mask)
    assert w.outline_edit.store.get(rec2.sha256, 0) is None


def test_draw_an_outline_where_the_model_found_none(qtbot, shown) -> None:
    w, rec = shown
    w.outline_edit.clear_outline()
    assert not rec.analysis.prediction.mask.any() and rec.analysis.measurements is None
    assert w.viewer.has_overlay() is False
    h, wd = rec.analysis.prediction.mask.shape
    w.outline_edit.set_tool("polygon")
    for x, y in [(0.4 * wd, 0.4 * h), (0.6 * wd, 0.4 * h), (0.5 * wd, 0.6 * h)]:
        click(w.viewer, x, y)
    assert w.viewer.finish_polygon()
    assert rec.analysis.measurements is not None and w.viewer.has_overlay()


def test_exported_overlay_says_the_outline_was_edited(qtbot, shown, tmp_path, monkeypatch) -> None:
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    w, rec = shown
    out = tmp_path / "overlay.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.exports.export_overlay()
    before = np.asarray(Image.open(out).convert("RGB")).astype(int)
    ed = w.outline_edit.editor(rec)
    ys, xs = np.nonzero(rec.analysis.prediction.mask)
    y = float(np.median(ys))
    ed.paint(xs.max() - 2, y, xs.max() + 8, y, 3)  # a small bump out of the lesion's right side
    w.outline_edit._apply(rec)
    assert w.outline_edit.is_edited(rec)
    out.unlink()
    w.exports.export_overlay()
    after = np.asarray(Image.open(out).convert("RGB")).astype(int)
    corner = (slice(0, 40), slice(0, 200))
    assert np.abs(after[corner] - before[corner]).sum() > 1000  # the note is drawn in the corner
