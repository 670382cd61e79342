"""DICOM whose header and pixel data disagree is refused, never shown part-filled (issue 28, item 2).

The files are built from a real ultrasound image (resources/samples) with busapp.core.dicomgen.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, RLELossless

from busapp.core.dicomgen import make_dataset, write_dicom
from busapp.core.imageio import ImageLoadError, load_image

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "case002.png"
US = np.asarray(Image.open(SAMPLE).convert("L"))[:256, :320].copy()
CINE = np.stack([US, US[::-1], 255 - US])


def _write(tmp_path: Path, name: str, ds) -> Path:
    return write_dicom(ds, tmp_path / name)


def test_whole_files_open(tmp_path):
    assert np.array_equal(load_image(_write(tmp_path, "a.dcm", make_dataset(US))).frame(0), US)
    assert load_image(_write(tmp_path, "c.dcm", make_dataset(CINE, multi_frame=True))).n_frames == 3


@pytest.mark.parametrize("change", ["rows", "columns"])
def test_rows_or_columns_larger_than_the_data(tmp_path, change):
    ds = make_dataset(US)
    if change == "rows":
        ds.Rows = 10000
    else:
        ds.Columns = 10000
    with pytest.raises(ImageLoadError, match=r"^big\.dcm: this DICOM file's image size \(.*\) does not match its "
                                             r"image data"):
        load_image(_write(tmp_path, "big.dcm", ds))


def test_rows_smaller_than_the_data(tmp_path):
    """Rows halved: pydicom would show the top half and drop the rest silently."""
    ds = make_dataset(US)
    ds.Rows = US.shape[0] // 2
    with pytest.raises(ImageLoadError, match="does not match its image data"):
        load_image(_write(tmp_path, "half.dcm", ds))


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_number_of_frames_disagrees_with_the_data(tmp_path, frames):
    ds = make_dataset(CINE, multi_frame=True)
    ds.NumberOfFrames = frames
    with pytest.raises(ImageLoadError, match=rf"image size \(320 x 256, {frames} frame\(s\)\) does not match its "
                                             r"image data \(enough for 3 frame\(s\)\)"):
        load_image(_write(tmp_path, "cine.dcm", ds))


def test_encapsulated_frames_fewer_than_declared(tmp_path):
    ds = make_dataset(CINE, multi_frame=True, transfer_syntax=RLELossless)
    assert load_image(_write(tmp_path, "ok.dcm", ds)).n_frames == 3
    ds.NumberOfFrames = 6
    with pytest.raises(ImageLoadError, match=r"^rle\.dcm: this DICOM file declares 6 frame\(s\) but its image data "
                                             r"holds 3"):
        load_image(_write(tmp_path, "rle.dcm", ds))


def _jpeg_dicom(frames: list[bytes]):
    ds = make_dataset(np.stack([US] * len(frames)) if len(frames) > 1 else US, multi_frame=len(frames) > 1)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    return ds


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_jpeg_frame_cut_short_is_refused(tmp_path):
    whole = _jpeg(US)
    assert load_image(_write(tmp_path, "ok.dcm", _jpeg_dicom([whole]))).frame(0).shape == US.shape
    cut = whole[: int(len(whole) * 0.4)] + b"\xff\xd9"
    with pytest.raises(ImageLoadError, match=r"^cut\.dcm: the image data in this DICOM file is incomplete \("):
        load_image(_write(tmp_path, "cut.dcm", _jpeg_dicom([cut])))


def test_jpeg_cine_frame_cut_short_is_refused_when_shown(tmp_path):
    whole = _jpeg(US)
    cut = whole[: int(len(whole) * 0.5)] + b"\xff\xd9"
    loaded = load_image(_write(tmp_path, "cine.dcm", _jpeg_dicom([whole, cut, whole])))
    assert loaded.frame(0).shape == US.shape and loaded.frame(2).shape == US.shape
    with pytest.raises(ImageLoadError, match=r"frame 2 of 3 of this DICOM file is incomplete"):
        loaded.frame(1)


def test_colour_dicom_over_the_memory_budget_refused_before_decoding(tmp_path, monkeypatch):
    from busapp.core import imageio

    rgb = np.dstack([US, US, US])
    monkeypatch.setattr(imageio, "WORK_BYTES", US.size * imageio.BYTES_PER_PIXEL["grey"] * 2)
    assert load_image(_write(tmp_path, "grey.dcm", make_dataset(US))).n_frames == 1
    with pytest.raises(ImageLoadError, match=r"rgb\.dcm: the image is too large to open within busapp's memory "
                                             r"limit \(320 x 256 pixels; busapp opens colour images up to"):
        load_image(_write(tmp_path, "rgb.dcm", make_dataset(rgb)))
