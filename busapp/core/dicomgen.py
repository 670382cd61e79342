"""Build small DICOM files from arrays: test fixtures, self-checks and demo data.

The files carry no real patient data (a placeholder name only when asked for one) and use
Secondary Capture or Ultrasound (multi-frame) SOP classes with fresh UIDs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def make_dataset(
    pixels: np.ndarray,
    *,
    photometric: str | None = None,
    multi_frame: bool | None = None,
    pixel_spacing_mm: tuple[float, float] | None = None,
    us_regions: Sequence[dict] = (),
    transfer_syntax: str | None = None,
    patient_name: str = "",
    patient_id: str = "",
    bits_stored: int | None = None,
):
    """A Dataset holding ``pixels``: (H, W) or (H, W, 3); with ``multi_frame`` a leading frame axis.

    ``photometric`` defaults to MONOCHROME2 / RGB; YBR_FULL converts RGB input. Colour data is
    written interleaved (PlanarConfiguration 0). ``us_regions`` items are dicts of
    Sequence-of-Ultrasound-Regions keywords. ``transfer_syntax`` other than native is applied
    with pydicom's encoders (RLE Lossless, JPEG 2000 Lossless where installed).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import convert_color_space
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from pydicom.valuerep import format_number_as_ds

    a = np.asarray(pixels)
    if multi_frame is None:
        multi_frame = a.ndim == 4 or (a.ndim == 3 and a.shape[-1] != 3)
    colour = a.ndim - int(multi_frame) == 3
    photometric = photometric or ("RGB" if colour else "MONOCHROME2")
    if photometric == "YBR_FULL":
        a = convert_color_space(a, "RGB", "YBR_FULL")
    n = a.shape[0] if multi_frame else 1
    rows, cols = a.shape[int(multi_frame) : int(multi_frame) + 2]

    ds = Dataset()
    meta = FileMetaDataset()
    multi = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    single = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    meta.MediaStorageSOPClassUID = multi if multi_frame else single
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.Rows, ds.Columns = int(rows), int(cols)
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    if a.dtype == np.uint8:
        ds.BitsAllocated = 8
    elif a.dtype in (np.uint16, np.int16):
        ds.BitsAllocated = 16
    else:
        raise ValueError(f"unsupported dtype {a.dtype}")
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(a.dtype == np.int16)
    if multi_frame:
        ds.NumberOfFrames = n
        ds.FrameTime = 33.3
        ds.FrameIncrementPointer = 0x00181063
    if pixel_spacing_mm is not None:
        ds.PixelSpacing = [format_number_as_ds(float(v)) for v in pixel_spacing_mm]
    if us_regions:
        items = []
        for spec in us_regions:
            item = Dataset()
            for keyword, value in spec.items():
                setattr(item, keyword, value)
            items.append(item)
        ds.SequenceOfUltrasoundRegions = items
    ds.PixelData = np.ascontiguousarray(a).tobytes()
    if transfer_syntax and transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax)
    return ds


def us_region(x0: int, y0: int, x1: int, y1: int, delta_x_cm: float, delta_y_cm: float, units: int = 3,
              spatial_format: int = 1, data_type: int = 1) -> dict:
    """One Sequence of Ultrasound Regions item (units 3 = cm, spatial format 1 = 2-D, type 1 = tissue)."""
    return {
        "RegionSpatialFormat": spatial_format,
        "RegionDataType": data_type,
        "RegionFlags": 0,
        "RegionLocationMinX0": x0,
        "RegionLocationMinY0": y0,
        "RegionLocationMaxX1": x1,
        "RegionLocationMaxY1": y1,
        "PhysicalUnitsXDirection": units,
        "PhysicalUnitsYDirection": units,
        "PhysicalDeltaX": float(delta_x_cm),
        "PhysicalDeltaY": float(delta_y_cm),
    }


def write_dicom(ds, path: str | Path, preamble: bool = True) -> Path:
    """Save ``ds``; ``preamble=False`` writes a bare dataset without the 128-byte preamble, DICM and meta."""
    path = Path(path)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        import copy

        from pydicom.dataset import FileMetaDataset

        bare = copy.copy(ds)  # shallow: leave the caller's file meta alone
        bare.file_meta = FileMetaDataset()
        bare.preamble = None
        bare.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return path
