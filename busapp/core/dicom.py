"""DICOM through pydicom: still images and cine loops, to uint8 grey or RGB display frames.

Decoders (pydicom plugins, no GPL code): native (uncompressed, little/big endian, deflated) by
pydicom; JPEG baseline/extended 8-bit by Pillow (GDCM as fallback); 12-bit JPEG extended by GDCM
through busapp's own plugin below; JPEG lossless by GDCM; JPEG-LS by GDCM, then pyjpegls (CharLS);
JPEG 2000 by pylibjpeg-openjpeg (then Pillow, GDCM); HTJ2K by pylibjpeg-openjpeg; RLE by
pylibjpeg-rle (then pydicom). ``decoder_plugins()`` lists them. Video transfer syntaxes (MPEG-2/4,
HEVC) and JPEG XL are refused with a clear message.

Patient identifiers read here go only into ``LoadedImage.metadata`` (shown, never logged);
pydicom's own log messages can quote element values, so they are silenced.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from busapp.core import imageio, offline
from busapp.core.imageio import FrameSequence, ImageLoadError, LoadedImage
from busapp.core.spacing import (
    SOURCE_PIXEL_SPACING,
    SPATIAL_FORMAT_2D,
    UNITS_CM,
    UltrasoundRegion,
    spacings_agree,
    valid_spacing,
)

offline.block_http_clients()  # pydicom would import requests/urllib3 otherwise

# Deflated DICOM: pydicom inflates the whole dataset and then copies the pixel data out of it, so
# twice this stays inside the memory budget (imageio.WORK_BYTES); also a zip-bomb guard.
MAX_INFLATED_BYTES = 256 << 20

# Transfer syntaxes pydicom 3.0 may not name, and the video ones (no still-image decoder exists).
_TS_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}
_VIDEO_PREFIX = "1.2.840.10008.1.2.4.10"  # .100-.108: MPEG-2, MPEG-4 AVC/H.264, HEVC/H.265

_SUPPORTED_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR",
                          "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")

# Tags whose values identify a person: kept for display only (not in imageio.SAFE_METADATA_KEYS).
_IDENTIFYING = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "study_date": "StudyDate",
    "accession_number": "AccessionNumber",
    "institution_name": "InstitutionName",
    "study_description": "StudyDescription",
}
_DESCRIPTIVE = {"modality": "Modality", "manufacturer": "Manufacturer", "model_name": "ManufacturerModelName"}


def looks_like_dicom(head: bytes) -> bool:
    """A DICM preamble, or (files without one) a first element in group 0002 or 0008."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    if head[:2] in (b"\x02\x00", b"\x08\x00"):  # little endian group: explicit VR, or a small implicit length
        return head[4:6].isalpha() or int.from_bytes(head[4:8], "little") < 1 << 16
    return head[:2] in (b"\x00\x02", b"\x00\x08") and head[4:6].isalpha()  # big endian, explicit VR


def _ts_name(ts: str) -> str:
    from pydicom.uid import UID

    name = _TS_NAMES.get(str(ts)) or UID(ts).name
    return name if name != str(ts) else f"transfer syntax {ts}"


# --- busapp's GDCM plugin for 12-bit JPEG Extended ------------------------------------------------
# pydicom's own GDCM plugin refuses 12-bit JPEG Extended and Pillow cannot read it; GDCM itself
# decodes it (its libgdcmjpeg12). Without pylibjpeg-libjpeg (GPL-3.0) nothing else would.
_GDCM12_LABEL = "busapp-gdcm12"
_plugins_lock = threading.Lock()
_plugins_added = False


def _decode_jpeg12_gdcm(src: bytes, runner: Any) -> bytes:
    """Decode one 12-bit grey JPEG Extended frame with GDCM (same calls as pydicom's GDCM plugin)."""
    import gdcm

    if runner.bits_stored <= 8 or runner.samples_per_pixel != 1:
        # 8-bit is Pillow's (tried first); colour 12-bit JPEG is untested with GDCM: refuse, don't guess.
        raise ValueError("busapp's GDCM plugin decodes 12-bit grey JPEG Extended only")
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    elem = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    elem.SetValue(fragments.__ref__())
    img = gdcm.Image()
    img.SetNumberOfDimensions(2)
    img.SetDimensions((runner.columns, runner.rows, 1))
    img.SetDataElement(elem)
    pi_type = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    img.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
    img.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    bits = runner.bits_stored
    img.SetPixelFormat(gdcm.PixelFormat(1, 16, bits, bits - 1, runner.pixel_representation))
    buf = img.GetBuffer()  # None when GDCM cannot decode the stream
    if buf is None:
        raise ValueError("GDCM could not decode the JPEG Extended frame")
    frame = buf.encode("utf-8", "surrogateescape")  # GDCM hands char* back as str
    runner.set_option("bits_allocated", 16)  # GDCM's 12-bit output is always 16-bit samples
    if len(frame) != runner.rows * runner.columns * 2:
        raise ValueError("GDCM returned a frame of the wrong size")
    return frame


def silence_gdcm() -> None:
    """GDCM prints codec messages ("Unsupported JPEG data precision 12" while it falls back from its
    8-bit to its 12-bit codec) to stderr; failures reach us as exceptions anyway."""
    try:
        import gdcm
    except ImportError:
        return
    gdcm.Trace.WarningOff()
    gdcm.Trace.ErrorOff()
    gdcm.Trace.DebugOff()


def _add_decoder_plugins() -> None:
    """Once per process: GDCM last and in a child process, plus busapp's 12-bit JPEG plugin.

    pydicom 3.0 tries GDCM first wherever it is installed. busapp prefers the maintained codecs
    that are also fuzzed upstream (Pillow's libjpeg-turbo, OpenJPEG 2.5 in pylibjpeg-openjpeg,
    CharLS 2.x in pyjpegls; GDCM bundles IJG 6b, OpenJPEG 2.3 and an older CharLS), so GDCM is
    the fallback there and the only decoder for JPEG lossless and 12-bit JPEG Extended. GDCM can
    abort() the process on damaged data, so every GDCM call goes through ``gdcm_isolated``.
    """
    global _plugins_added
    with _plugins_lock:  # Decoder.add_plugin is not thread-safe; loads run in worker threads
        if _plugins_added:
            return
        _plugins_added = True
        from pydicom.pixels import get_decoder
        from pydicom.pixels.decoders.gdcm import DECODER_DEPENDENCIES as GDCM_SYNTAXES
        from pydicom.uid import JPEGExtended12Bit

        silence_gdcm()
        isolated = "busapp.core.gdcm_isolated"
        for ts in GDCM_SYNTAXES:
            decoder = get_decoder(ts)
            if "gdcm" in decoder.available_plugins:
                decoder.remove_plugin("gdcm")  # re-adding appends: the isolated GDCM, tried last
                decoder.add_plugin("gdcm", (isolated, "decode_gdcm"))
        try:
            get_decoder(JPEGExtended12Bit).add_plugin(_GDCM12_LABEL, (isolated, "decode_gdcm12"))
        except ValueError:  # already there (module reloaded): fine
            pass


def decoder_plugins(ts: str) -> list[str]:
    """The pydicom decoding plugins installed for transfer syntax ``ts``, in the order pydicom tries them."""
    from pydicom.pixels import get_decoder

    _add_decoder_plugins()
    try:
        decoder = get_decoder(ts)
    except Exception:  # unknown syntaxes have no decoder
        return []
    # available_plugins is sorted by name; the private dict keeps pydicom's trial order.
    order = list(getattr(decoder, "_available", {}))
    return order if set(order) == set(decoder.available_plugins) else list(decoder.available_plugins)


def _fail(name: str, text: str, detail: str = "") -> ImageLoadError:
    return ImageLoadError(f"{name}: {text}", detail=detail)


def _check_inflated_size(name: str, fp: BinaryIO) -> None:
    """Deflated DICOM is inflated whole by pydicom: check the size first, in bounded steps."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    read_preamble(fp, True)
    _read_file_meta_info(fp)
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    total, step = 0, 1 << 24
    buf = fp.read(1 << 20)
    while buf and not d.eof:
        total += len(d.decompress(buf, step))
        if total > MAX_INFLATED_BYTES:
            raise _fail(name, "the compressed DICOM file expands to an implausible size; it is damaged or unsafe.",
                        "deflate limit")
        buf = d.unconsumed_tail or fp.read(1 << 20)


def _read_dataset(name: str, source: bytes | BinaryIO) -> Any:
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    start = fp.tell()
    try:
        if str(DeflatedExplicitVRLittleEndian).encode() in fp.read(4096):  # in the file meta
            fp.seek(start)
            _check_inflated_size(name, fp)
        fp.seek(start)
        # From an open file, pydicom reads each element once: the pixel data is in memory once.
        ds = pydicom.dcmread(fp, force=True)
        ds.PixelData if "PixelData" in ds else None  # noqa: B018  (parse the element now, inside the guard)
    except ImageLoadError:
        raise
    except Exception as e:  # untrusted bytes: every parser failure means "damaged"
        raise _fail(name, "the DICOM file is damaged or incomplete and cannot be read.", type(e).__name__) from None
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if ts is None:
        # Files without the DICM header (or without a transfer syntax): take the encoding pydicom found.
        from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

        implicit, little = getattr(ds, "original_encoding", (True, True))
        if "PixelData" in ds and bytes(ds.PixelData[:4]) == b"\xfe\xff\x00\xe0":
            raise _fail(name, "this DICOM file holds compressed image data but does not say which compression; "
                        "busapp cannot decode it.", "no transfer syntax")
        ts = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        ds.file_meta.TransferSyntaxUID = ts
    return ds


def _check_decodable(name: str, ts: str) -> None:
    from pydicom.pixels import get_decoder

    if str(ts).startswith(_VIDEO_PREFIX):
        raise _fail(name, f"this DICOM file holds video ({_ts_name(ts)}), which busapp cannot decode. "
                    "Export the loop from the scanner as uncompressed or JPEG DICOM instead.", "video")
    try:
        decoder = get_decoder(ts)
    except Exception:
        raise _fail(name, f"this DICOM file uses a compression busapp cannot decode ({_ts_name(ts)}).",
                    "no decoder") from None
    if not decoder.is_available:
        raise _fail(name, f"this DICOM file uses a compression busapp cannot decode ({_ts_name(ts)}): "
                    "the decoder is not installed.", "decoder missing")


def _int(ds: Any, keyword: str, name: str) -> int:
    try:
        value = ds[keyword].value
        return int(value)
    except Exception:
        raise _fail(name, f"this DICOM file lacks valid image information ({keyword}), so it cannot be shown.",
                    f"missing {keyword}") from None


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG/JPEG-LS SOF or JPEG 2000 SIZ header, None if not found."""
    offset = 0
    if frame.startswith(b"\x00\x00\x00\x0cjP  "):  # JP2 wrapper: find the codestream box
        pos = frame.find(b"jp2c")
        offset = pos + 4 if pos >= 0 else 0
    if frame[offset : offset + 4] == b"\xff\x4f\xff\x51" and len(frame) >= offset + 24:
        b = frame[offset + 8 : offset + 24]
        xs, ys, xo, yo = (int.from_bytes(b[i : i + 4], "big") for i in range(0, 16, 4))
        return xs - xo, ys - yo
    if frame.startswith(b"\xff\xd8"):
        from pydicom.pixels.utils import _get_jpg_parameters

        info = _get_jpg_parameters(frame[:65536])
        if "width" in info:
            return int(info["width"]), int(info["height"])
    return None


_PILLOW_JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})  # 8-bit JPEG


def _jpeg_frame_incomplete(codestream: bytes) -> str | None:
    """A JPEG frame cut short and closed with an end marker decodes with grey fill: find it."""
    from busapp.core import completeness

    try:
        im = completeness.pil_jpeg_of(codestream)
        im.load()
        decoded = np.asarray(im)
    except Exception:  # Pillow cannot decode it (12-bit, damaged): the structural check only
        decoded = None
    return completeness.jpeg_incomplete(codestream, decoded)


def _check_fragments(name: str, pixel_data: bytes, n: int) -> None:
    """Encapsulated data: at least one fragment per frame, and an offset table (if any) per frame."""
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    try:
        fp = io.BytesIO(pixel_data)
        offsets = parse_basic_offsets(fp)
        n_fragments, _ = parse_fragments(fp)
    except Exception:
        raise _fail(name, "the DICOM file is damaged or incomplete and cannot be read.", "fragments") from None
    if n_fragments < n or (offsets and len(offsets) != n):
        held = len(offsets) if offsets and len(offsets) != n else n_fragments
        raise _fail(name, f"this DICOM file declares {n} frame(s) but its image data holds {held}; it is damaged "
                    "or incomplete.", "frame count")


def _check_native_length(name: str, length: int, rows: int, cols: int, spp: int, bits_alloc: int, n: int,
                         photometric: str) -> None:
    """Uncompressed data must hold Rows x Columns x samples x frames, no less and no extra frame."""
    per_frame_bits = rows * cols * (2 if photometric == "YBR_FULL_422" else spp) * bits_alloc
    expected = (per_frame_bits * n + 7) // 8
    frame_bytes = max(1, per_frame_bits // 8)
    if length < expected or length - expected >= frame_bytes:
        held = length * 8 / per_frame_bits
        raise _fail(name, f"this DICOM file's image size ({cols} x {rows}, {n} frame(s)) does not match its image "
                    f"data (enough for {held:.4g} frame(s)); it is damaged or incomplete.", "pixel data length")


def _to_display(arr: np.ndarray, ds: Any, photometric: str, bits_stored: int) -> np.ndarray:
    from busapp.core.preprocess import to_grey_u8

    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:  # 16-bit LUT entries
            arr = (arr.astype(np.uint32) >> 8).astype(np.uint8)
        return arr
    if arr.ndim == 3:  # RGB (YBR already converted by pydicom)
        if arr.dtype == np.uint8:
            return arr
        top = float(2 ** min(max(bits_stored, 1), 32) - 1)
        return np.clip(arr.astype(np.float64) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    if arr.dtype != np.uint8:
        if "WindowCenter" in ds and "WindowWidth" in ds:
            try:
                from pydicom.pixels import apply_voi_lut

                arr = apply_voi_lut(arr, ds)
            except Exception:
                pass  # a broken window falls back to the full range below
        arr = to_grey_u8(arr)
    elif 0 < bits_stored < 8:  # e.g. 1-bit masks stored in 8-bit pixels
        arr = (np.minimum(arr, 2**bits_stored - 1).astype(np.uint16) * 255 // (2**bits_stored - 1)).astype(np.uint8)
    if photometric == "MONOCHROME1":  # 0 is white: invert so tissue looks as on the scanner
        arr = 255 - arr
    return arr


def _parse_regions(ds: Any) -> list[UltrasoundRegion]:
    out: list[UltrasoundRegion] = []
    try:
        items = list(ds.get("SequenceOfUltrasoundRegions") or [])
    except Exception:
        return out
    for item in items:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except Exception:
            continue  # a region without a location cannot contain anything
        spacing = None
        try:
            if (int(item.PhysicalUnitsXDirection) == UNITS_CM and int(item.PhysicalUnitsYDirection) == UNITS_CM
                    and int(item.get("RegionSpatialFormat", SPATIAL_FORMAT_2D)) == SPATIAL_FORMAT_2D):
                spacing = valid_spacing(abs(float(item.PhysicalDeltaY)) * 10, abs(float(item.PhysicalDeltaX)) * 10)
        except Exception:
            spacing = None
        try:
            dtype = int(item.get("RegionDataType"))
        except Exception:
            dtype = None
        out.append(UltrasoundRegion(x0, y0, x1, y1, spacing, dtype))
    return out


def _pixel_spacing(ds: Any) -> tuple[float, float] | None:
    try:
        ps = ds.get("PixelSpacing")
        if ps is None or len(ps) != 2:
            return None
        return valid_spacing(float(ps[0]), float(ps[1]))
    except Exception:
        return None


def _metadata(ds: Any, ts: str, photometric: str, n: int, bits: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "DICOM", "transfer_syntax": _ts_name(ts), "photometric": photometric,
                            "n_frames": n, "bits_stored": bits}
    for key, kw in {**_DESCRIPTIVE, **_IDENTIFYING}.items():
        try:
            value = ds.get(kw)
            if value not in (None, ""):
                meta[key] = str(value)
        except Exception:
            pass
    try:
        sop = ds.get("SOPClassUID")
        if sop:
            meta["sop_class"] = sop.name
        if "FrameTime" in ds:
            meta["frame_time_ms"] = float(ds.FrameTime)
    except Exception:
        pass
    return meta


def load_dicom(path: Path, data: bytes | BinaryIO) -> LoadedImage:
    """Open DICOM from its bytes or from a file opened for reading (the pixel data is read once)."""
    _add_decoder_plugins()
    # pydicom converts values lazily and warns with them (possibly identifiers): silence it throughout.
    _silence_pydicom_logs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _load_dicom(path, data)
        except ImageLoadError:
            raise
        except Exception as e:  # pydicom converts values lazily: a damaged element can fail anywhere
            raise _fail(path.name, "the DICOM file is damaged or incomplete and cannot be read.",
                        type(e).__name__) from None


def _drop_record(record: logging.LogRecord) -> bool:
    return False


def _silence_pydicom_logs() -> None:
    """pydicom logs element values (possibly identifiers) and decoder tracebacks: drop them all.

    A logger filter only sees records logged to that very logger, so every pydicom logger that
    exists by now (decoders are imported lazily) gets it; ImageLoadError.detail keeps the reason.
    """
    for name in list(logging.Logger.manager.loggerDict):
        if name == "pydicom" or name.startswith("pydicom."):
            lg = logging.getLogger(name)
            if _drop_record not in lg.filters:
                lg.addFilter(_drop_record)


def _load_dicom(path: Path, data: bytes | BinaryIO) -> LoadedImage:
    name = path.name
    ds = _read_dataset(name, data)
    if "PixelData" not in ds:
        kind = ""
        try:
            kind = f" (it is a {ds.SOPClassUID.name})" if "SOPClassUID" in ds and ds.SOPClassUID.is_valid else ""
        except Exception:
            pass
        raise _fail(name, f"this DICOM file contains no image{kind}.", "no pixel data")
    ts = ds.file_meta.TransferSyntaxUID
    _check_decodable(name, ts)

    rows, cols = _int(ds, "Rows", name), _int(ds, "Columns", name)
    bits_alloc, spp = _int(ds, "BitsAllocated", name), _int(ds, "SamplesPerPixel", name)
    try:
        bits = int(ds.get("BitsStored") or bits_alloc)
    except Exception:
        bits = bits_alloc
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in _SUPPORTED_PHOTOMETRIC:
        raise _fail(name, f"this DICOM file uses a colour format busapp cannot show ({photometric or 'none given'}).",
                    "photometric")
    if rows < 1 or cols < 1 or spp not in (1, 3) or bits_alloc not in (1, 8, 16, 32, 64):
        raise _fail(name, "this DICOM file lacks valid image information (image size or sample layout), "
                    "so it cannot be shown.", "geometry")
    if rows * cols > imageio.MAX_PIXELS:
        raise _fail(name, f"the image is too large ({cols} x {rows} pixels; busapp opens up to "
                    f"{imageio.MAX_PIXELS // 1_000_000} megapixels).", "pixel limit")
    try:
        n = int(ds.get("NumberOfFrames") or 1)
    except Exception:
        n = 1
    if n < 1:
        n = 1
    if n > imageio.MAX_FRAMES:
        raise _fail(name, f"the cine loop has too many frames ({n}; busapp opens up to {imageio.MAX_FRAMES}).",
                    "frame limit")

    kind = "colour" if spp == 3 or photometric == "PALETTE COLOR" else ("grey16" if bits_alloc > 8 else "grey")
    imageio.check_memory(name, cols, rows, kind)
    compressed = ts.is_compressed
    if compressed:
        _check_fragments(name, ds.PixelData, n)
    else:
        _check_native_length(name, len(ds.PixelData), rows, cols, spp, bits_alloc, n, photometric)
    jpeg8 = str(ts) in _PILLOW_JPEG_SYNTAXES

    def decode(i: int) -> np.ndarray:
        from pydicom.encaps import get_frame
        from pydicom.pixels import pixel_array

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if compressed:
                    codestream = get_frame(ds.PixelData, i, number_of_frames=n)
                    size = _codestream_size(codestream)
                    if size is not None and size != (cols, rows):
                        raise ValueError("codestream size differs from Rows/Columns")
                    if jpeg8:
                        reason = _jpeg_frame_incomplete(codestream)
                        if reason:
                            where = f"frame {i + 1} of {n} of " if n > 1 else ""
                            raise _fail(name, f"the image data in {where}this DICOM file is incomplete ({reason}); "
                                        "busapp does not show or analyse a partly decoded image.", "incomplete")
                arr = pixel_array(ds, index=i if n > 1 else None)
                if arr.shape[:2] != (rows, cols):
                    raise ValueError("unexpected shape")
                return np.ascontiguousarray(_to_display(arr, ds, photometric, bits))
        except ImageLoadError:
            raise
        except Exception as e:  # untrusted data: any decoder failure is "damaged", never a crash
            where = f"frame {i + 1} of {n} of " if n > 1 else ""
            raise _fail(name, f"the image data in {where}this DICOM file is damaged or incomplete and cannot be "
                        f"decoded ({_ts_name(ts)}).", type(e).__name__) from None

    first = decode(0)
    regions = _parse_regions(ds)
    spacing, source = _pixel_spacing(ds), SOURCE_PIXEL_SPACING
    # A file that contradicts itself (Pixel Spacing vs. a calibrated region) gets no mm at all.
    if spacing is not None and any(r.spacing_mm and not spacings_agree(r.spacing_mm, spacing) for r in regions):
        spacing = None
        regions = [dataclasses.replace(r, spacing_mm=None) for r in regions]
    frames = [first] if n == 1 else FrameSequence(n, decode, name, first=first)
    return LoadedImage(
        path=path,
        frames=frames,
        source_format="DICOM",
        pixel_spacing_mm=spacing,
        spacing_source=source if spacing else None,
        bit_depth=bits,
        metadata=_metadata(ds, ts, photometric, n, bits),
        us_regions=regions,
    )
