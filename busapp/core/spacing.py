"""Physical pixel size: when busapp trusts a mm value, and when it falls back to pixels.

Rules (also in docs/image-formats.md):

* Raster files (PNG/JPEG/BMP/TIFF) never give a spacing: their DPI / resolution tags describe
  printing or the screen, not the body, so a mm value from them would be wrong.
* DICOM *Pixel Spacing* (0028,0030) is image-wide: it applies to every pixel.
* DICOM *Sequence of Ultrasound Regions* (0018,6011) calibrates rectangles of the image (a
  scanner screen also holds text, body markers, Doppler spectra, a second view...). A region's
  PhysicalDeltaX/Y is trusted only if both are in cm, the region is 2-D tissue/flow image data,
  and the lesion's bounding box lies entirely inside that region. If the box lies in no
  calibrated region, straddles regions, or the regions/Pixel Spacing that contain it disagree,
  there is no trusted spacing and measurements stay in pixels.
* A file whose Pixel Spacing contradicts one of its calibrated regions gets no spacing at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from busapp.core.imageio import LoadedImage

SOURCE_PIXEL_SPACING = "DICOM Pixel Spacing"
SOURCE_US_REGION = "DICOM ultrasound region"

# A spacing outside this range (mm per pixel) is a damaged or nonsensical header, not a calibration.
MIN_SPACING_MM = 1e-4
MAX_SPACING_MM = 10.0
AGREE_REL_TOL = 0.01  # two calibrations "agree" within 1 %

UNITS_CM = 3  # PhysicalUnitsX/YDirection code for centimetres (PS3.3 C.8.5.5.1.15)
SPATIAL_FORMAT_2D = 1  # RegionSpatialFormat: 2-D (tissue or flow image)

BBox = tuple[int, int, int, int]  # (x_min, y_min, x_max, y_max), inclusive pixel indices


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the DICOM Sequence of Ultrasound Regions; coordinates inclusive, in pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    spacing_mm: tuple[float, float] | None  # (row, column) = (delta Y, delta X) in mm, None if not spatial
    data_type: int | None = None  # RegionDataType: 1 tissue, 2 colour flow, 3 PW Doppler, ...

    def contains(self, bbox: BBox) -> bool:
        x_min, y_min, x_max, y_max = bbox
        return self.x0 <= x_min and self.y0 <= y_min and x_max <= self.x1 and y_max <= self.y1


def valid_spacing(row_mm: float, col_mm: float) -> tuple[float, float] | None:
    """(row, col) if both are finite and plausible, else None."""
    try:
        r, c = float(row_mm), float(col_mm)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(r) and math.isfinite(c)):
        return None
    if not (MIN_SPACING_MM <= r <= MAX_SPACING_MM and MIN_SPACING_MM <= c <= MAX_SPACING_MM):
        return None
    return (r, c)


def spacings_agree(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(math.isclose(x, y, rel_tol=AGREE_REL_TOL) for x, y in zip(a, b, strict=True))


def bbox_of_mask(mask: np.ndarray) -> BBox | None:
    """Inclusive bounding box of the non-zero pixels, or None for an empty mask."""
    m = np.asarray(mask)
    rows = np.flatnonzero(m.any(axis=1))  # two reductions: no index arrays of every lesion pixel
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m[rows[0] : rows[-1] + 1].any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _within_image(bbox: BBox, width: int, height: int) -> bool:
    x_min, y_min, x_max, y_max = bbox
    return 0 <= x_min <= x_max < width and 0 <= y_min <= y_max < height


def spacing_for_region(loaded: LoadedImage, bbox: BBox) -> tuple[tuple[float, float], str] | None:
    """The trusted (row_mm, col_mm) spacing and its source for a lesion with bounding box ``bbox``.

    ``bbox`` is (x_min, y_min, x_max, y_max) in inclusive pixel indices of the displayed frame.
    Returns None when no spacing can be trusted for that box: the caller must then report pixels.
    """
    if not _within_image(bbox, loaded.width, loaded.height):
        return None
    regions: Sequence[UltrasoundRegion] = getattr(loaded, "us_regions", ()) or ()
    if regions:
        containing = [r for r in regions if r.contains(bbox)]
        calibrated = [r.spacing_mm for r in containing if r.spacing_mm is not None]
        # A box inside an uncalibrated region (e.g. a Doppler spectrum) has no spatial meaning.
        if not calibrated or len(calibrated) != len(containing):
            return None
        first = calibrated[0]
        if not all(spacings_agree(first, s) for s in calibrated[1:]):
            return None
        if loaded.pixel_spacing_mm is not None and not spacings_agree(first, loaded.pixel_spacing_mm):
            return None
        return first, SOURCE_US_REGION
    if loaded.pixel_spacing_mm is not None:
        return loaded.pixel_spacing_mm, loaded.spacing_source or SOURCE_PIXEL_SPACING
    return None


def spacing_for_mask(loaded: LoadedImage, mask: np.ndarray) -> tuple[tuple[float, float], str] | None:
    """``spacing_for_region`` for the bounding box of a lesion mask (None for an empty mask)."""
    bbox = bbox_of_mask(mask)
    return None if bbox is None else spacing_for_region(loaded, bbox)
