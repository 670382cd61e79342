"""Lesion measurements against masks of known geometry and the BrEaST-Lesions-USG pixel sizes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from busapp.core.measure import LesionMeasurements, format_measurements, largest_component, measure_mask


def raster(shape: tuple[int, int], inside, spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Sample a shape given in physical (x, y) coordinates at pixel centres."""
    row_mm, col_mm = spacing
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    return inside((c + 0.5) * col_mm, (r + 0.5) * row_mm)


def ellipse(cx, cy, a, b, theta):
    ct, sn = math.cos(theta), math.sin(theta)

    def inside(x, y):
        u, v = (x - cx) * ct + (y - cy) * sn, -(x - cx) * sn + (y - cy) * ct
        return (u / a) ** 2 + (v / b) ** 2 <= 1

    return inside


def rectangle(cx, cy, w, h, theta):
    ct, sn = math.cos(theta), math.sin(theta)

    def inside(x, y):
        u, v = (x - cx) * ct + (y - cy) * sn, -(x - cx) * sn + (y - cy) * ct
        return (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)

    return inside


def seg_len(seg, spacing=(1.0, 1.0)) -> float:
    (x0, y0), (x1, y1) = seg
    return math.hypot((x1 - x0) * spacing[1], (y1 - y0) * spacing[0])


def direction(seg, spacing=(1.0, 1.0)) -> np.ndarray:
    (x0, y0), (x1, y1) = seg
    v = np.array([(x1 - x0) * spacing[1], (y1 - y0) * spacing[0]])
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("theta_deg", [0, 17, 45, 90, 133])
def test_rotated_ellipse_in_pixels(theta_deg: float) -> None:
    a, b = 80.0, 35.0
    m = measure_mask(raster((300, 320), ellipse(160, 150, a, b, math.radians(theta_deg))), None)
    assert m is not None
    assert (m.unit, m.area_unit, m.spacing_source) == ("px", "px²", None)
    assert m.area == pytest.approx(math.pi * a * b, rel=0.02)
    # Pixel squares add at most about one pixel to each diameter.
    assert 2 * a - 0.5 <= m.longest_diameter <= 2 * a + 1.5
    assert 2 * b - 1.0 <= m.perpendicular_diameter <= 2 * b + 1.5
    # The caliper segments have the reported lengths, cross at right angles, along the major axis.
    assert seg_len(m.longest_axis) == pytest.approx(m.longest_diameter)
    assert seg_len(m.perpendicular_axis) == pytest.approx(m.perpendicular_diameter)
    assert abs(direction(m.longest_axis) @ direction(m.perpendicular_axis)) < 1e-9
    major = np.array([math.cos(math.radians(theta_deg)), math.sin(math.radians(theta_deg))])
    assert abs(direction(m.longest_axis) @ major) > 0.995
    mid = np.mean(m.perpendicular_axis, axis=0)
    assert np.allclose(mid, (160, 150), atol=2.0)  # the short axis is measured through the centre


@pytest.mark.parametrize("theta_deg", [0, 30, 60, 110])
def test_rotated_rectangle(theta_deg: float) -> None:
    w, h = 120.0, 50.0
    m = measure_mask(raster((260, 260), rectangle(130, 130, w, h, math.radians(theta_deg))), None)
    assert m is not None
    diag = math.hypot(w, h)
    assert m.area == pytest.approx(w * h, rel=0.03)
    assert diag - 1.0 <= m.longest_diameter <= diag + 1.5  # the longest diameter is the diagonal
    # Longest chord at right angles to the diagonal, from long side to long side: h * diag / w.
    assert m.perpendicular_diameter == pytest.approx(h * diag / w, abs=2.0)


def test_axis_aligned_rectangle_is_exact() -> None:
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:35] = True  # 10 rows x 30 columns
    m = measure_mask(mask, None)
    assert m.area == 300
    assert m.longest_diameter == pytest.approx(math.hypot(30, 10))
    assert m.depth_to_width == pytest.approx(10 / 30)
    assert not m.taller_than_wide
    assert m.longest_axis == ((5.0, 10.0), (35.0, 20.0))


@pytest.mark.parametrize("spacing", [(0.1, 0.1), (0.2, 0.1), (0.05, 0.15)])
def test_anisotropic_spacing_measures_in_physical_space(spacing: tuple[float, float]) -> None:
    # A 16 mm x 6 mm ellipse tilted 30 degrees, sampled on an anisotropic grid.
    a, b = 8.0, 3.0
    shape = (int(25 / spacing[0]), int(25 / spacing[1]))
    mask = raster(shape, ellipse(12.5, 12.5, a, b, math.radians(30)), spacing)
    m = measure_mask(mask, spacing, "DICOM Pixel Spacing")
    px = max(spacing)
    assert (m.unit, m.area_unit, m.spacing_source) == ("mm", "mm²", "DICOM Pixel Spacing")
    assert m.area == pytest.approx(math.pi * a * b, rel=0.03)
    assert 2 * a - px <= m.longest_diameter <= 2 * a + 1.5 * px
    assert 2 * b - 1.5 * px <= m.perpendicular_diameter <= 2 * b + 1.5 * px
    # Endpoints are in pixel coordinates; converted with the spacing they give the mm lengths.
    assert seg_len(m.longest_axis, spacing) == pytest.approx(m.longest_diameter)
    assert seg_len(m.perpendicular_axis, spacing) == pytest.approx(m.perpendicular_diameter)
    assert abs(direction(m.longest_axis, spacing) @ direction(m.perpendicular_axis, spacing)) < 1e-9


def test_depth_to_width_uses_physical_units() -> None:
    mask = np.zeros((100, 100), bool)
    mask[20:60, 20:60] = True  # square in pixels
    assert measure_mask(mask, None).depth_to_width == pytest.approx(1.0)
    tall = measure_mask(mask, (0.2, 0.1))  # rows are twice as long as columns are wide
    assert tall.depth_to_width == pytest.approx(2.0)
    assert tall.taller_than_wide
    # A vertical ellipse is taller than wide, a horizontal one is not.
    vert = measure_mask(raster((200, 200), ellipse(100, 100, 20, 40, 0)), None)
    horiz = measure_mask(raster((200, 200), ellipse(100, 100, 40, 20, 0)), None)
    assert vert.taller_than_wide and vert.depth_to_width == pytest.approx(2.0, rel=0.05)
    assert not horiz.taller_than_wide and horiz.depth_to_width == pytest.approx(0.5, rel=0.05)


def test_largest_component_and_holes() -> None:
    mask = np.zeros((60, 60), bool)
    mask[5:15, 5:15] = True  # 100 px
    mask[30:50, 30:50] = True  # 400 px, with a 4x4 hole
    mask[38:42, 38:42] = False
    mask[0, 59] = True
    comp = largest_component(mask)
    assert comp.sum() == 400 and comp[40, 40] and not comp[10, 10]
    m = measure_mask(mask, None)
    assert m.area == 400
    assert m.longest_diameter == pytest.approx(math.hypot(20, 20))
    # Diagonal neighbours are one component (8-connectivity).
    diag = np.zeros((10, 10), bool)
    diag[[1, 2, 3, 4], [1, 2, 3, 4]] = True
    diag[8, 8] = True
    assert largest_component(diag).sum() == 4
    # A gap touching the outside is not a hole.
    cup = np.zeros((10, 10), bool)
    cup[2:8, 2:8] = True
    cup[2:6, 4:6] = False
    assert measure_mask(cup, None).area == 36 - 8


def test_edge_cases() -> None:
    assert measure_mask(np.zeros((20, 20), bool), None) is None
    assert measure_mask(np.zeros((20, 20), np.uint8), (0.1, 0.1)) is None
    one = np.zeros((5, 5), np.uint8)
    one[2, 3] = 255
    m = measure_mask(one, None)
    assert m.area == 1 and m.longest_diameter == pytest.approx(math.sqrt(2))
    assert m.perpendicular_diameter == pytest.approx(math.sqrt(2))
    full = measure_mask(np.ones((7, 9), bool), (0.5, 0.5))
    assert full.area == pytest.approx(63 * 0.25)
    with pytest.raises(ValueError):
        measure_mask(np.ones((3, 3, 3), bool), None)
    for bad in [(0.0, 0.1), (-1.0, 0.1), (float("nan"), 0.1)]:
        with pytest.raises(ValueError):
            measure_mask(np.ones((3, 3), bool), bad)
    # Without spacing the source is never shown, even if given.
    assert measure_mask(np.ones((3, 3), bool), None, "user calibrated").spacing_source is None


def test_format_always_shows_units() -> None:
    m = measure_mask(np.ones((10, 20), bool), (0.1, 0.1), "user calibrated")
    rows = dict(format_measurements(m))
    assert rows["Area"].startswith("2.0 mm²") and "user calibrated" in rows["Area"]
    assert rows["Longest diameter"].endswith(" mm")
    px = dict(format_measurements(measure_mask(np.ones((10, 20), bool), None)))
    assert "px²" in px["Area"] and "pixel size unknown" in px["Area"]
    assert px["Perpendicular diameter"].endswith(" px")
    assert format_measurements(None) == [("Lesion", "no lesion outlined")]
    assert set(m.to_json()) >= {"area", "unit", "depth_to_width", "spacing_source", "taller_than_wide"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), min_size=1, max_size=40))
def test_longest_diameter_is_max_corner_distance(pixels: list[tuple[int, int]]) -> None:
    """Brute force: the max Feret diameter is the max distance between pixel-square corners."""
    mask = np.zeros((12, 12), bool)
    for r, c in pixels:
        mask[r, c] = True
    m = measure_mask(mask, (1.0, 2.0))
    comp = largest_component(mask)
    rs, cs = np.nonzero(comp)
    corners = np.concatenate([np.stack([cs + dx, rs + dy], 1) for dx in (0, 1) for dy in (0, 1)]) * np.array([2.0, 1.0])
    brute = np.sqrt(((corners[:, None] - corners[None]) ** 2).sum(-1)).max()
    assert m.longest_diameter == pytest.approx(brute)
    assert m.area == pytest.approx(2.0 * comp.sum())
    assert 0 < m.perpendicular_diameter <= m.longest_diameter + 1e-9
    assert isinstance(m, LesionMeasurements)


def test_breast_lesions_usg_pixel_sizes(data_root) -> None:
    """Ground-truth masks with the manifest's pixel size: mm² = pixels * (pixel_size_cm * 10)²."""
    root = data_root / "breast_lesions_usg"
    rows = [
        r for r in csv.DictReader(open(root / "manifest.csv", encoding="utf-8")) if r["masks"] and r["pixel_size_cm"]
    ]
    assert len(rows) > 200
    for r in rows[::4]:  # every 4th case keeps the test quick; the sizes vary across the set
        mask = np.asarray(Image.open(root / r["masks"].split(";")[0]).convert("L")) > 127
        mm = float(r["pixel_size_cm"]) * 10
        m = measure_mask(mask, (mm, mm), "BrEaST-Lesions-USG manifest")
        p = measure_mask(mask, None)
        if not mask.any():
            assert m is None
            continue
        assert m.area == pytest.approx(p.area * mm * mm, rel=1e-9)
        assert m.longest_diameter == pytest.approx(p.longest_diameter * mm, rel=1e-9)
        assert m.perpendicular_diameter == pytest.approx(p.perpendicular_diameter * mm, rel=1e-9)
        assert m.depth_to_width == pytest.approx(p.depth_to_width, rel=1e-9)
        # The measured lesion is (almost) the whole annotated mask: one outline per case.
        assert mask.sum() * mm * mm * 0.9 <= m.area <= mask.sum() * mm * mm * 1.1 + 1
        # Breast lesions in this set are millimetres to a few centimetres across.
        assert 1.0 < m.longest_diameter < 120.0, r["id"]
        assert m.perpendicular_diameter <= m.longest_diameter


@pytest.mark.parametrize("spacing", [None, (0.08, 0.11)])
def test_one_region_shortcut_measures_the_same(spacing) -> None:
    """``measure_lesion(one_region=True)`` on a largest-region mask gives the figures of the full
    component search, in pixels and in mm."""
    from busapp.core.measure import measure_lesion

    class Loaded:  # a PNG: no spacing of its own
        pixel_spacing_mm = None
        spacing_source = None
        us_regions: list = []  # noqa: RUF012
        width, height = 120, 90

    class Store:
        def get(self, sha):
            return spacing

    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = raster((90, 120), ellipse(*rng.uniform(30, 60, 2), *rng.uniform(5, 25, 2), rng.uniform(0, 3)))
        mask |= rng.random(mask.shape) > 0.985  # specks, and holes below
        mask &= rng.random(mask.shape) > 0.01
        one = largest_component(mask)
        full, s_full = measure_lesion(Loaded(), mask, "ab" * 32, Store())
        short, s_short = measure_lesion(Loaded(), one, "ab" * 32, Store(), one_region=True)
        assert full == short and s_full == s_short == spacing
        assert full.unit == ("px" if spacing is None else "mm")
    empty = np.zeros((90, 120), bool)
    assert measure_lesion(Loaded(), empty, one_region=True) == (None, None)
