"""GDCM abort()s the whole process on some damaged codestreams; busapp must survive them.

The frame below is pydicom's JPEG lossless test image with six bits flipped (found by the loader's
fuzz test). Decoded by GDCM in-process it ends Python with SIGABRT (exit 134, checked in the first
test, so this file proves the danger is real); through busapp it is a clear "damaged" message.
"""

import subprocess
import sys
import textwrap

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, get_frame

from busapp.core.imageio import ImageLoadError, load_image

FLIPS = {2: 8, 112: 128, 815: 64, 1047: 8, 2103: 4, 2171: 128}  # byte offset -> XOR mask


def _damaged_file(tmp_path):
    ds = dcmread(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"))
    frame = bytearray(get_frame(ds.PixelData, 0, number_of_frames=1))
    for offset, mask in FLIPS.items():
        frame[offset] ^= mask
    ds.PixelData = encapsulate([bytes(frame)])
    path = tmp_path / "damaged_lossless.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_plain_gdcm_aborts_on_this_frame(tmp_path):
    pytest.importorskip("gdcm")
    path = _damaged_file(tmp_path)
    code = textwrap.dedent(f"""
        from pydicom import dcmread
        from pydicom.encaps import get_frame
        from pydicom.pixels.decoders import gdcm
        from pydicom.pixels.decoders.base import DecodeRunner
        ds = dcmread({str(path)!r})
        runner = DecodeRunner(ds.file_meta.TransferSyntaxUID)
        runner.set_source(ds)
        gdcm._decode_frame(get_frame(ds.PixelData, 0, number_of_frames=1), runner)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert run.returncode == -6 or run.returncode == 134  # SIGABRT


def test_busapp_reports_it_as_damaged_and_keeps_working(tmp_path):
    pytest.importorskip("gdcm")
    with pytest.raises(ImageLoadError, match="damaged or incomplete"):
        load_image(_damaged_file(tmp_path))
    # The same process (and a fresh GDCM worker) still decodes a good JPEG lossless file.
    good = load_image(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"))
    assert good.frame(0).shape[2] == 3
