"""Physical pixel size: Pixel Spacing, ultrasound regions, and real BrEaST-Lesions-USG pixel sizes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from busapp.core.dicomgen import make_dataset, us_region, write_dicom
from busapp.core.imageio import load_image
from busapp.core.spacing import (
    SOURCE_PIXEL_SPACING,
    SOURCE_US_REGION,
    bbox_of_mask,
    spacing_for_mask,
    spacing_for_region,
)

IMG = np.random.default_rng(3).integers(0, 256, (200, 300), dtype=np.uint8)


def _loaded(tmp_path, **kw):
    return load_image(write_dicom(make_dataset(IMG, **kw), tmp_path / "s.dcm"))


def test_pixel_spacing_image_wide(tmp_path):
    loaded = _loaded(tmp_path, pixel_spacing_mm=(0.2, 0.25))
    assert loaded.pixel_spacing_mm == (0.2, 0.25) and loaded.spacing_source == SOURCE_PIXEL_SPACING
    assert spacing_for_region(loaded, (0, 0, 299, 199)) == ((0.2, 0.25), SOURCE_PIXEL_SPACING)
    assert spacing_for_region(loaded, (0, 0, 300, 199)) is None  # outside the image


@pytest.mark.parametrize("bad", [(0.0, 0.1), (-0.1, 0.1), (50.0, 50.0)])
def test_implausible_pixel_spacing_not_trusted(tmp_path, bad):
    loaded = _loaded(tmp_path, pixel_spacing_mm=bad)
    assert loaded.pixel_spacing_mm is None and loaded.spacing_source is None


def test_ultrasound_regions(tmp_path):
    # Left: B-mode 0.01 cm/px; right: a second view at 0.02 cm/px; bottom strip: Doppler spectrum (cm/s, s).
    regions = [
        us_region(0, 0, 149, 149, 0.01, 0.01),
        us_region(150, 0, 299, 149, 0.02, 0.02),
        us_region(0, 150, 299, 199, 0.005, 0.5, units=4, spatial_format=3, data_type=3),
    ]
    loaded = _loaded(tmp_path, us_regions=regions)
    assert loaded.pixel_spacing_mm is None  # region-dependent: never image-wide
    assert len(loaded.us_regions) == 3
    assert spacing_for_region(loaded, (10, 10, 100, 80)) == ((0.1, 0.1), SOURCE_US_REGION)
    assert spacing_for_region(loaded, (160, 10, 299, 149)) == ((0.2, 0.2), SOURCE_US_REGION)
    assert spacing_for_region(loaded, (100, 10, 200, 80)) is None  # straddles two views
    assert spacing_for_region(loaded, (10, 160, 50, 190)) is None  # inside the Doppler strip
    assert spacing_for_region(loaded, (10, 140, 50, 160)) is None  # half in tissue, half in Doppler
    mask = np.zeros(IMG.shape, bool)
    mask[20:40, 30:70] = True
    assert bbox_of_mask(mask) == (30, 20, 69, 39)
    assert spacing_for_mask(loaded, mask) == ((0.1, 0.1), SOURCE_US_REGION)
    assert spacing_for_mask(loaded, np.zeros_like(mask)) is None


def test_region_delta_sign_and_anisotropy(tmp_path):
    loaded = _loaded(tmp_path, us_regions=[us_region(0, 0, 299, 199, -0.012, 0.008)])
    assert spacing_for_region(loaded, (5, 5, 50, 50)) == (pytest.approx((0.08, 0.12)), SOURCE_US_REGION)


def test_region_conflicting_with_pixel_spacing(tmp_path):
    loaded = _loaded(tmp_path, pixel_spacing_mm=(0.3, 0.3), us_regions=[us_region(0, 0, 299, 199, 0.01, 0.01)])
    assert loaded.pixel_spacing_mm is None  # contradiction: neither is trusted image-wide
    assert spacing_for_region(loaded, (5, 5, 50, 50)) is None
    agree = _loaded(tmp_path, pixel_spacing_mm=(0.1, 0.1), us_regions=[us_region(0, 0, 299, 199, 0.01, 0.01)])
    assert agree.pixel_spacing_mm == (0.1, 0.1)
    assert spacing_for_region(agree, (5, 5, 50, 50)) == ((0.1, 0.1), SOURCE_US_REGION)


def test_uncalibrated_region_units(tmp_path):
    loaded = _loaded(tmp_path, us_regions=[us_region(0, 0, 299, 199, 0.01, 0.01, units=0)])
    assert spacing_for_region(loaded, (5, 5, 50, 50)) is None


# --- BrEaST-Lesions-USG: the manifest's pixel size through DICOM to mm -----------------------------


def _breast_rows(data_root, n: int = 3) -> list[dict]:
    with open(data_root / "breast_lesions_usg" / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["pixel_size_cm"] and r["masks"]]
    sizes = sorted({r["pixel_size_cm"] for r in rows})
    picked = [next(r for r in rows if r["pixel_size_cm"] == s) for s in (sizes[0], sizes[len(sizes) // 2], sizes[-1])]
    return picked[:n]


@pytest.mark.parametrize("calibration", ["pixel_spacing", "us_region"])
def test_breast_lesions_usg_mm(data_root, tmp_path, calibration):
    for row in _breast_rows(data_root):
        folder = data_root / "breast_lesions_usg"
        with Image.open(folder / row["image"]) as im:
            img = np.asarray(im.convert("L"))
        with Image.open(folder / row["masks"].split(";")[0]) as im:
            mask = np.asarray(im.convert("L")) > 127
        cm = float(row["pixel_size_cm"])
        mm = cm * 10
        h, w = img.shape
        kw = (
            {"pixel_spacing_mm": (mm, mm)}
            if calibration == "pixel_spacing"
            else {"us_regions": [us_region(0, 0, w - 1, h - 1, cm, cm)]}
        )
        loaded = load_image(write_dicom(make_dataset(img, **kw), tmp_path / f"{row['id']}.dcm"))
        assert np.array_equal(loaded.frame(0), img)  # same pixels as the PNG: same model input
        found = spacing_for_mask(loaded, mask)
        assert found is not None
        spacing, source = found
        assert spacing == pytest.approx((mm, mm), rel=1e-6)
        assert source == (SOURCE_PIXEL_SPACING if calibration == "pixel_spacing" else SOURCE_US_REGION)
        area_px = int(mask.sum())
        expected_mm2 = area_px * (cm * 10) ** 2
        assert area_px * spacing[0] * spacing[1] == pytest.approx(expected_mm2, rel=1e-6)
        try:
            from busapp.core.measure import measure_mask
        except ImportError:
            continue
        m = measure_mask(mask, spacing, source)
        px = measure_mask(mask, None)
        assert m.unit == "mm" and m.spacing_source == source and px.unit == "px"
        assert m.area == pytest.approx(px.area * mm * mm, rel=1e-6)
        assert m.longest_diameter == pytest.approx(px.longest_diameter * mm, rel=1e-6)
