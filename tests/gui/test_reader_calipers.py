"""Manual calipers (two-point lines, mm where the pixel size is known) and the report pair (width
parallel to the skin, depth at right angles) beside D1/D2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gui_helpers import drop, wait_all_done
from test_reader_mask_edit import drag

from busapp.gui.calipers import caliper_length, report_pair


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
