"""Manual calipers (two-point lines, mm where the pixel size is known) and the report pair (width
parallel to the skin, depth at right angles) beside D1/D2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gui_helpers import drop, wait_all_done
from test_reader_mask_edit import drag

from busapp.core.calipers import caliper_length, report_pair


def test_report_pair_is_the_horizontal_and_vertical_extent() -> None:
    m = np.zeros((100, 120), bool)
    yy, xx = np.mgrid[:100, :120]
    m[((yy - 50) / 20.0) ** 2 + ((xx - 60) / 40.0) ** 2 <= 1] = True
    m[5:8, 5:9] = True  # a speck: not the lesion
    rp = report_pair(m)
    ys, xs = np.nonzero(m[10:])
    assert rp.width_px == xs.max() - xs.min() + 1 and rp.depth_px == ys.max() - ys.min() + 1
    (ax, ay), (bx, by) = rp.width_line
    assert ay == by and bx - ax == rp.width_px  # parallel to the skin (the top of the image)
    (cx, cy), (dx, dy) = rp.depth_line
    assert cx == dx and dy - cy == rp.depth_px
    assert report_pair(np.zeros((5, 5), bool)) is None


def test_caliper_length_in_mm_with_anisotropic_spacing() -> None:
    line = ((0.0, 0.0), (30.0, 40.0))
    assert caliper_length(line, None).text() == "50.0 px"
    got = caliper_length(line, (0.1, 0.2), "user calibrated")  # row 0.1 mm, column 0.2 mm
    assert got.unit == "mm" and got.value == pytest.approx(math.hypot(30 * 0.2, 40 * 0.1))


def test_drawn_caliper_is_measured_and_follows_calibration(qtbot, window, sample_images) -> None:
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    sec = window.calipers.section
    vals = sec.values()
    rp = report_pair(rec.analysis.prediction.mask)
    assert vals["width"] == f"{rp.width_px:.1f} px" and vals["depth"] == f"{rp.depth_px:.1f} px"
    window.calipers.tool_action.trigger()
    assert window.viewer.edit_tool() == "caliper"
    drag(window.viewer, [(100, 100), (160, 180)])
    vals = sec.values()
    assert "C1" in vals and float(vals["C1"].split()[0]) == pytest.approx(100.0, abs=2.0)
    assert window.viewer.manual_caliper_count() == 1
    # The outline is untouched by a caliper.
    assert not window.outline_edit.is_edited(rec)
    # With a calibration for this image, the same line reads in mm.
    window.tools.calibrations.set(rec.sha256, (0.1, 0.1))
    window.calipers.refresh()
    vals = sec.values()
    assert vals["C1"].endswith(" mm") and float(vals["C1"].split()[0]) == pytest.approx(10.0, abs=0.2)
    assert vals["width"] == f"{rp.width_px * 0.1:.1f} mm"
    sec.show_pair.setChecked(True)
    assert window.viewer.manual_caliper_count() == 3  # width and depth lines drawn too
    window.calipers.clear()
    assert "C1" not in sec.values() and window.viewer.manual_caliper_count() == 2


def test_calipers_are_kept_with_the_image_and_reach_the_report(qtbot, make_window, sample_images, tmp_path,
                                                               settings_file) -> None:
    """Issue 25: the reader's calipers were lost when the image was closed, and no report showed them."""
    from pypdf import PdfReader

    from busapp.report.pdf import write_report

    w = make_window()
    drop(w, sample_images[:1])
    wait_all_done(qtbot, w, n=1)
    w.calipers.tool_action.trigger()
    drag(w.viewer, [(100, 100), (160, 180)])
    (drawn,) = w.calipers.lines()
    w.clear_images()
    assert w.viewer.manual_caliper_count() == 0
    # Reopened (here in a new window, as after a restart): the line is back, at the same place.
    w2 = make_window(settings_path=settings_file)
    drop(w2, sample_images[:1])
    wait_all_done(qtbot, w2, n=1)
    rec = w2.records()[0]
    (back,) = w2.calipers.lines()
    assert np.allclose(back, drawn, atol=0.01) and "C1" in w2.calipers.section.values()
    from busapp.gui.exports import report_context

    ctx = report_context(w2, rec)
    a = rec.analysis
    d = write_report(tmp_path / "r.pdf", rec.loaded, a.prediction, a.measurements, w2.model_info.card,
                     sha256=rec.sha256, **ctx)
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(tmp_path / "r.pdf").pages).split())
    c1 = w2.calipers.section.values()["C1"]
    assert f"Caliper C1 (reader): {c1}" in " ".join(f"{k}: {v}" for k, v in d.caliper_rows())
    assert "Caliper C1 (reader)" in text and c1 in text and "Width" in text and "lines the reader drew" in text
    # Cleared: gone from the store too.
    w2.calipers.clear()
    assert w2.calipers.store.get(rec.sha256, 0) == []
