"""DICOM: generated files for every photometric/transfer-syntax case, pydicom's own test files,
clear messages for what cannot be decoded, and patient identifiers kept out of logs."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from busapp.core.dicomgen import make_dataset, write_dicom
from busapp.core.imageio import ImageLoadError, find_images, load_image

RNG = np.random.default_rng(7)
GREY = RNG.integers(0, 256, (48, 64), dtype=np.uint8)
RGB = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
CINE = RNG.integers(0, 256, (6, 32, 40), dtype=np.uint8)
SECRET = "Doe^Jane"


def _write(tmp_path: Path, name: str, ds, **kw) -> Path:
    return write_dicom(ds, tmp_path / name, **kw)


def _load(path: Path):
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    loaded = load_image(path)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime  # read-only
    return loaded


# --- generated files -----------------------------------------------------------------------------


def test_monochrome2_8bit_exact(tmp_path):
    loaded = _load(_write(tmp_path, "m2.dcm", make_dataset(GREY)))
    assert loaded.source_format == "DICOM" and loaded.n_frames == 1
    assert np.array_equal(loaded.frame(0), GREY) and np.array_equal(loaded.grey(), GREY)
    assert loaded.pixel_spacing_mm is None and loaded.spacing_source is None


def test_monochrome1_inverted_for_display(tmp_path):
    loaded = _load(_write(tmp_path, "m1.dcm", make_dataset(GREY, photometric="MONOCHROME1")))
    assert np.array_equal(loaded.frame(0), 255 - GREY)
    assert loaded.metadata["photometric"] == "MONOCHROME1"


def test_monochrome1_16bit(tmp_path):
    a = RNG.integers(0, 4096, (20, 30)).astype(np.uint16)
    f = _load(_write(tmp_path, "m1_16.dcm", make_dataset(a, photometric="MONOCHROME1", bits_stored=12))).frame(0)
    assert f[np.unravel_index(a.argmax(), a.shape)] == 0 and f[np.unravel_index(a.argmin(), a.shape)] == 255


def test_16bit_grey_and_signed(tmp_path):
    a = RNG.integers(-500, 1500, (20, 30)).astype(np.int16)
    loaded = _load(_write(tmp_path, "s16.dcm", make_dataset(a)))
    f = loaded.frame(0)
    assert f.dtype == np.uint8 and f.min() == 0 and f.max() == 255 and loaded.bit_depth == 16
    order = np.argsort(a.ravel(), kind="stable")
    assert np.all(np.diff(f.ravel()[order].astype(int)) >= 0)


def test_rgb_and_ybr_full(tmp_path):
    assert np.array_equal(_load(_write(tmp_path, "rgb.dcm", make_dataset(RGB))).frame(0), RGB)
    ybr = _load(_write(tmp_path, "ybr.dcm", make_dataset(RGB, photometric="YBR_FULL")))
    assert ybr.metadata["photometric"] == "YBR_FULL"
    assert np.abs(ybr.frame(0).astype(int) - RGB).max() <= 2  # YCbCr round trip rounding only


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_native_syntaxes(tmp_path, syntax):
    ds = make_dataset(GREY)
    ds.file_meta.TransferSyntaxUID = syntax
    p = tmp_path / "n.dcm"
    ds.save_as(p, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian)
    assert np.array_equal(_load(p).frame(0), GREY)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_cine_lossless(tmp_path, syntax):
    cine = np.stack([RGB[:32, :40]] * 3) // np.array([1, 2, 3], np.uint8)[:, None, None, None]
    loaded = _load(_write(tmp_path, "c.dcm", make_dataset(cine, multi_frame=True, transfer_syntax=syntax)))
    assert loaded.n_frames == 3
    for i in (2, 0, 1):
        assert np.array_equal(loaded.frame(i), cine[i])


def test_multiframe_cine_lazy(tmp_path):
    loaded = _load(_write(tmp_path, "cine.dcm", make_dataset(CINE, multi_frame=True)))
    assert loaded.n_frames == 6 and len(loaded.frames) == 6
    assert loaded.metadata["frame_time_ms"] == pytest.approx(33.3)
    for i in (5, 2, 0, -1):
        assert np.array_equal(loaded.frame(i), CINE[i])
    assert [f.shape for f in loaded.frames[1:3]] == [(32, 40), (32, 40)]
    with pytest.raises(IndexError):
        loaded.frame(6)


def test_multiframe_damaged_late_frame(tmp_path):
    """Frame 0 decodes; a damaged later frame gives a message when the user steps to it."""
    frames = [np.ascontiguousarray(f).tobytes() for f in CINE[:3]]
    ds = make_dataset(CINE[:3], multi_frame=True, transfer_syntax=RLELossless)
    good = make_dataset(CINE[:1], multi_frame=True, transfer_syntax=RLELossless)
    from pydicom.encaps import generate_frames

    first = next(generate_frames(good.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([first, b"\x01\x00\x00\x00" + b"\0" * 60, first[:10]])
    loaded = _load(_write(tmp_path, "bad.dcm", ds))
    assert np.array_equal(loaded.frame(0), CINE[0]) and len(frames) == 3
    with pytest.raises(ImageLoadError, match="frame 2 of 3"):
        loaded.frame(1)


def test_palette_color_generated(tmp_path):
    idx = (GREY // 64).astype(np.uint8)
    ds = make_dataset(idx, photometric="PALETTE COLOR")
    lut = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint16)
    for i, ch in enumerate("Red Green Blue".split()):
        setattr(ds, f"{ch}PaletteColorLookupTableDescriptor", [4, 0, 8])
        setattr(ds, f"{ch}PaletteColorLookupTableData", lut[:, i].astype(np.uint8).tobytes())
    f = _load(_write(tmp_path, "pal.dcm", ds)).frame(0)
    assert np.array_equal(f, lut[idx].astype(np.uint8))


def test_file_without_preamble(tmp_path):
    p = _write(tmp_path, "IM0001", make_dataset(GREY, pixel_spacing_mm=(0.2, 0.25)), preamble=False)
    assert p.read_bytes()[128:132] != b"DICM"
    loaded = _load(p)
    assert np.array_equal(loaded.frame(0), GREY) and loaded.pixel_spacing_mm == (0.2, 0.25)
    assert find_images([tmp_path])[0] == [p]


# --- what cannot be decoded: specific messages ----------------------------------------------------


def _encapsulated(tmp_path: Path, syntax: str) -> Path:
    """A file in a transfer syntax pydicom will not write: write a same-length placeholder, patch it."""
    placeholder = "9" * len(syntax)  # a (private) UID of the same length
    ds = make_dataset(GREY)
    ds.PixelData = encapsulate([b"\xff\x0a" + b"\0" * 64])
    ds.file_meta.TransferSyntaxUID = UID(placeholder)
    p = tmp_path / "x.dcm"
    ds.save_as(p, implicit_vr=False, little_endian=True)
    data = p.read_bytes()
    assert data.count(placeholder.encode()) == 1
    p.write_bytes(data.replace(placeholder.encode(), syntax.encode()))
    return p


def test_jpeg_xl_message(tmp_path):
    with pytest.raises(ImageLoadError, match=r"compression busapp cannot decode \(JPEG XL Lossless\)"):
        load_image(_encapsulated(tmp_path, "1.2.840.10008.1.2.4.110"))


def test_video_message(tmp_path):
    with pytest.raises(ImageLoadError, match=r"holds video \(MPEG-4 AVC/H.264"):
        load_image(_encapsulated(tmp_path, "1.2.840.10008.1.2.4.102"))


def test_unknown_private_syntax(tmp_path):
    with pytest.raises(ImageLoadError, match="cannot decode"):
        load_image(_encapsulated(tmp_path, "1.2.3.4.5.6.7"))


def test_no_pixels_and_missing_rows(tmp_path):
    ds = make_dataset(GREY)
    del ds.PixelData
    with pytest.raises(ImageLoadError, match="contains no image"):
        load_image(_write(tmp_path, "np.dcm", ds))
    ds = make_dataset(GREY)
    del ds.Rows
    with pytest.raises(ImageLoadError, match=r"lacks valid image information \(Rows\)"):
        load_image(_write(tmp_path, "nr.dcm", ds))


def test_unsupported_photometric(tmp_path):
    ds = make_dataset(RGB)
    ds.PhotometricInterpretation = "CMYK"
    with pytest.raises(ImageLoadError, match=r"colour format busapp cannot show \(CMYK\)"):
        load_image(_write(tmp_path, "cmyk.dcm", ds))


def test_pixel_limit_from_header(tmp_path, monkeypatch):
    from busapp.core import imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(_write(tmp_path, "big.dcm", make_dataset(GREY)))


def test_codestream_larger_than_header_refused(tmp_path):
    """A JPEG 2000 frame claiming other dimensions than Rows/Columns (a bomb) is not decoded."""
    big = make_dataset(np.zeros((96, 96), np.uint8), transfer_syntax=JPEG2000Lossless)
    ds = make_dataset(GREY[:32, :32], transfer_syntax=JPEG2000Lossless)
    ds.PixelData = big.PixelData
    with pytest.raises(ImageLoadError, match="damaged or incomplete"):
        load_image(_write(tmp_path, "j2k.dcm", ds))


def test_deflate_bomb_refused(tmp_path, monkeypatch):
    from busapp.core import dicom

    p = get_testdata_file("image_dfl.dcm")
    assert load_image(p).frame(0).shape == (512, 512)
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 10_000)
    with pytest.raises(ImageLoadError, match="implausible size"):
        load_image(p)


# --- patient identifiers --------------------------------------------------------------------------


def test_identifiers_shown_not_logged(tmp_path, caplog, capfd):
    ds = make_dataset(GREY, patient_name=SECRET, patient_id="PID-314159")
    ds.PatientBirthDate = "19700101"
    ds.NumberOfFrames = 1234567890
    p = _write(tmp_path, "id.dcm", ds)
    # An invalid value makes pydicom warn (log + stderr) quoting it: here it quotes the patient ID.
    data = p.read_bytes()
    assert data.count(b"1234567890") == 1
    p.write_bytes(data.replace(b"1234567890", b"PID-314159"))
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(ImageLoadError) as e:
            load_image(p)
    ds.NumberOfFrames = 1
    with caplog.at_level(logging.DEBUG):
        loaded = load_image(_write(tmp_path, "ok.dcm", ds))
    assert loaded.metadata["patient_name"] == SECRET and loaded.metadata["patient_id"] == "PID-314159"
    safe = loaded.safe_metadata()
    assert safe["modality"] == "US" and safe["format"] == "DICOM"
    blob = repr(loaded) + str(safe) + caplog.text + "".join(capfd.readouterr()) + str(e.value) + e.value.detail
    blob += " ".join(str(w.message) for w in warned)
    for secret in (SECRET, "PID-314159", "19700101"):
        assert secret not in blob


# --- pydicom's own test files (offline) -----------------------------------------------------------

DECODES = {
    # file: (photometric, n_frames, colour)
    "CT_small.dcm": ("MONOCHROME2", 1, False),
    "MR_small_bigendian.dcm": ("MONOCHROME2", 1, False),
    "MR_small_RLE.dcm": ("MONOCHROME2", 1, False),
    "MR_small_jp2klossless.dcm": ("MONOCHROME2", 1, False),
    "MR_small_jpeg_ls_lossless.dcm": ("MONOCHROME2", 1, False),
    "JPEGLSNearLossless_08.dcm": ("MONOCHROME2", 1, False),
    "JPEGLSNearLossless_16.dcm": ("MONOCHROME2", 1, False),
    "JPGExtended.dcm": ("MONOCHROME2", 1, False),  # 12-bit JPEG Extended: busapp's GDCM plugin
    "JPEG-lossy.dcm": ("MONOCHROME2", 1, False),  # the same with invalid SOS parameters; GDCM copes
    "JPEG2000.dcm": ("MONOCHROME2", 1, False),
    "693_J2KI.dcm": ("MONOCHROME2", 1, False),
    "image_dfl.dcm": ("MONOCHROME2", 1, False),
    "SC_rgb_jpeg_gdcm.dcm": ("RGB", 1, True),  # JPEG lossless SV1
    "SC_rgb_jpeg_dcmtk.dcm": ("YBR_FULL", 1, True),  # JPEG baseline
    "SC_rgb_dcmtk_+eb+cy+np.dcm": ("YBR_FULL_422", 1, True),
    "SC_ybr_full_422_uncompressed.dcm": ("YBR_FULL_422", 1, True),
    "SC_rgb_jls_lossy_line.dcm": ("RGB", 1, True),
    "SC_rgb_gdcm_KY.dcm": ("RGB", 1, True),  # JPEG 2000
    "GDCMJ2K_TextGBR.dcm": ("YBR_RCT", 1, True),
    "SC_rgb_rle_16bit_2frame.dcm": ("RGB", 2, True),
    "examples_palette.dcm": ("PALETTE COLOR", 1, True),
    "examples_ybr_color.dcm": ("YBR_FULL_422", 30, True),  # JPEG baseline cine
    "rtdose_rle.dcm": ("MONOCHROME2", 15, False),
}


@pytest.mark.parametrize("name", sorted(DECODES))
def test_pydicom_test_files_decode(name):
    photometric, n, colour = DECODES[name]
    loaded = _load(Path(get_testdata_file(name)))
    assert loaded.metadata["photometric"] == photometric and loaded.n_frames == n
    for i in {0, n - 1}:
        f = loaded.frame(i)
        assert f.dtype == np.uint8 and f.ndim == (3 if colour else 2) and f.std() > 0


def test_ybr_jpeg_matches_rgb_jpeg():
    """The same picture stored as JPEG in RGB and in YBR_FULL_422 shows the same colours."""
    rgb = load_image(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm")).frame(0).astype(int)
    for name in ("SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm"):
        ybr = load_image(get_testdata_file(name)).frame(0).astype(int)
        assert np.abs(ybr - rgb).mean() < 3


FAILS = {
    "MR_truncated.dcm": "damaged or incomplete",
    "rtplan.dcm": r"contains no image \(it is a RT Plan Storage\)",
    "waveform_ecg.dcm": "contains no image",
    "test-SR.dcm": "contains no image",
}


@pytest.mark.parametrize("name", sorted(FAILS))
def test_pydicom_bad_files_clear_message(name):
    with pytest.raises(ImageLoadError, match=FAILS[name]) as e:
        load_image(get_testdata_file(name))
    assert str(e.value).startswith(name + ": ") and "Traceback" not in str(e.value)


# --- decoders: no GPL code, GDCM + pyjpegls where pylibjpeg-libjpeg (GPL-3.0) used to decode ------

# pylibjpeg-libjpeg's decode of JPGExtended.dcm (12-bit JPEG Extended), every 128th row and 32nd
# column, taken before it was removed. GDCM's IDCT rounds differently: +-1 on ~1.4% of the pixels.
LIBJPEG_JPGEXTENDED_SAMPLES = [
    [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 20, 44, 1, 1], [1, 19, 23, 69, 68, 49, 40, 23],
    [1, 17, 22, 41, 56, 51, 62, 15], [1, 1, 14, 20, 14, 19, 23, 1], [1, 1, 2, 31, 1, 36, 1, 1],
    [1, 1, 1, 34, 1, 29, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1],
]
LIBJPEG_JPGEXTENDED_MEAN = 14.383037567138672

# A 16x16 12-bit JPEG lossless (process 14, UID .57) codestream made with GDCM: (x*251 + y*97 + x*y*5) % 4096.
JPEG_P14_12BIT = bytes.fromhex(
    "ffd8ffc3000b100010001001011100ffc4001800010003010000000000000000000000000907080c10ffda00080101000100"
    "00ebf77eefddfbbf77eefddfbbf77eefddfbbf77eefdcc280200802008020080200802008020080200804c282a0a82a0a82a"
    "0a82a0a82a0a82a0a82a0b8412614290a4290a4290a4290a4290a4290a4290ac21330a1e87a1e87a1e87a1e87a1e87a1e87a"
    "1f84390f98514451144511445114451144511445114c2268a4c28ca328ca328ca328ca328ca328ca33846119466614791e47"
    "91e4791e4791e4791e47b08ea3c8f23d30a4691a4691a4691a4691a4691a4784892348d23985284a1284a1284a1284a1284a"
    "3093a5094250944c296a5a96a5a96a5a96a5a96a5b84b12d4b52d4b6614c9324c9324c9324c9324cb098a64992649926530a"
    "6e9ba6e9ba6e9ba6e9ba6f84d9374dd374dd379853c4f13c4f13c4f13c4f309da789e2789e2789e4c2a0a82a0a82a0a82a0a"
    "8385014150541505415066151946519465194651946c28aa328ca328ca328dffd9"
)


def test_no_gpl_decoder_installed():
    """pylibjpeg-libjpeg (GPL-3.0) must not be needed, nor be present where the bundle is built from."""
    import importlib.util

    assert importlib.util.find_spec("libjpeg") is None, "uninstall pylibjpeg-libjpeg (GPL-3.0)"


def test_decoder_plugins_per_syntax():
    """Which plugin decodes what, in pydicom's trial order: the maintained codecs first, GDCM as fallback."""
    from busapp.core.dicom import decoder_plugins

    expected = {
        "1.2.840.10008.1.2.4.50": ["pillow", "gdcm"],  # JPEG baseline
        "1.2.840.10008.1.2.4.51": ["pillow", "gdcm", "busapp-gdcm12"],  # JPEG extended (12-bit: busapp's)
        "1.2.840.10008.1.2.4.57": ["gdcm"],  # JPEG lossless
        "1.2.840.10008.1.2.4.70": ["gdcm"],  # JPEG lossless SV1
        "1.2.840.10008.1.2.4.80": ["pyjpegls", "gdcm"],  # JPEG-LS lossless
        "1.2.840.10008.1.2.4.81": ["pyjpegls", "gdcm"],  # JPEG-LS near-lossless
        "1.2.840.10008.1.2.4.90": ["pylibjpeg", "pillow", "gdcm"],  # JPEG 2000 lossless
        "1.2.840.10008.1.2.4.91": ["pylibjpeg", "pillow", "gdcm"],  # JPEG 2000
        "1.2.840.10008.1.2.4.201": ["pylibjpeg"],  # HTJ2K lossless
        "1.2.840.10008.1.2.5": ["pylibjpeg", "pydicom"],  # RLE
    }
    assert {ts: decoder_plugins(ts) for ts in expected} == expected


def test_jpeg_extended_12bit_matches_libjpeg_reference():
    """12-bit JPEG Extended decodes (GDCM), within +-1 of pylibjpeg-libjpeg's decode; the file with broken SOS
    parameters (JPEG-lossy.dcm, refused before) gives exactly the pixels of its fixed version."""
    import pydicom
    from pydicom.pixels import pixel_array

    from busapp.core.dicom import decoder_plugins

    assert "busapp-gdcm12" in decoder_plugins("1.2.840.10008.1.2.4.51")
    fixed = pixel_array(pydicom.dcmread(get_testdata_file("JPGExtended.dcm")))
    broken = pixel_array(pydicom.dcmread(get_testdata_file("JPEG-lossy.dcm")))
    assert fixed.shape == (1024, 256) and fixed.dtype == np.uint16
    assert np.array_equal(broken, fixed)
    assert np.abs(fixed[::128, ::32].astype(int) - LIBJPEG_JPGEXTENDED_SAMPLES).max() <= 1
    assert fixed.mean() == pytest.approx(LIBJPEG_JPGEXTENDED_MEAN, abs=0.02) and fixed.max() <= 4095
    shown = load_image(get_testdata_file("JPEG-lossy.dcm"))
    assert shown.bit_depth == 12 and np.array_equal(shown.frame(0), load_image(get_testdata_file("JPGExtended.dcm")).frame(0))


def test_jpeg_lossless_process14_generated(tmp_path):
    """JPEG lossless (process 14, UID .57: no pydicom test file) decodes exactly (GDCM)."""
    from pydicom.uid import JPEGLossless

    y, x = np.mgrid[:16, :16]
    expected = ((x * 251 + y * 97 + x * y * 5) % 4096).astype(np.uint16)
    ds = make_dataset(expected, bits_stored=12)
    native = load_image(_write(tmp_path, "native.dcm", ds)).frame(0)
    ds.PixelData = encapsulate([JPEG_P14_12BIT])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    p = _write(tmp_path, "p14.dcm", ds)
    import pydicom
    from pydicom.pixels import pixel_array

    assert np.array_equal(pixel_array(pydicom.dcmread(p)), expected)
    assert np.array_equal(_load(p).frame(0), native)


@pytest.mark.parametrize(
    ("bits", "colour", "syntax"),
    [(8, False, "1.2.840.10008.1.2.4.80"), (6, False, "1.2.840.10008.1.2.4.80"), (12, False, "1.2.840.10008.1.2.4.80"),
     (16, False, "1.2.840.10008.1.2.4.80"), (8, True, "1.2.840.10008.1.2.4.80"), (7, False, "1.2.840.10008.1.2.4.81")],
)
def test_jpeg_ls_generated(tmp_path, bits, colour, syntax):
    """JPEG-LS round trips (pyjpegls encodes), including 6/7-bit data that GDCM's pydicom plugin refuses."""
    from pydicom.uid import JPEGLSNearLossless

    shape = (40, 48, 3) if colour else (40, 48)
    a = RNG.integers(0, 2**bits, shape).astype(np.uint8 if bits <= 8 else np.uint16)
    ds = make_dataset(a, bits_stored=bits)
    native = load_image(_write(tmp_path, "native.dcm", ds)).frame(0)
    kw = {"jls_error": 1} if syntax == JPEGLSNearLossless else {}
    ds.compress(syntax, encoding_plugin="pyjpegls", **kw)
    got = _load(_write(tmp_path, "jls.dcm", ds)).frame(0)
    if syntax == JPEGLSNearLossless:
        assert np.abs(got.astype(int) - native).max() <= 255 // (2**bits - 1) + 1  # one step of the stored range
    else:
        assert np.array_equal(got, native)
