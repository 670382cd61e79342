"""Raster formats through Pillow, limits, read-only behaviour and folder expansion."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busapp.core import imageio
from busapp.core.imageio import ImageLoadError, LoadedImage, find_images, load_image, skipped_summary
from busapp.core.preprocess import preprocess

RNG = np.random.default_rng(4)
GREY = RNG.integers(0, 256, (37, 53), dtype=np.uint8)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)


def _save(tmp_path: Path, name: str, im: Image.Image, **kw) -> Path:
    p = tmp_path / name
    im.save(p, **kw)
    return p


def _load_unchanged(path: Path) -> LoadedImage:
    """Load, and check the input file was not touched."""
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    loaded = load_image(path)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    return loaded


def _check_frame(a: np.ndarray) -> None:
    assert a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3))
    assert a.flags.c_contiguous


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_lossless_grey_and_rgb_exact(tmp_path, fmt, suffix):
    g = _load_unchanged(_save(tmp_path, "g" + suffix, Image.fromarray(GREY), format=fmt))
    c = _load_unchanged(_save(tmp_path, "c" + suffix, Image.fromarray(RGB), format=fmt))
    assert np.array_equal(g.frame(0), GREY) and g.source_format == fmt and g.bit_depth == 8
    assert np.array_equal(c.frame(0), RGB) and (c.width, c.height) == (53, 37)
    assert g.pixel_spacing_mm is None and g.spacing_source is None  # raster files never give mm


def test_uint8_grey_reaches_model_unchanged(tmp_path):
    """The model was trained on 8-bit grey: a grey PNG must give the very same model input."""
    loaded = load_image(_save(tmp_path, "g.png", Image.fromarray(GREY)))
    assert np.array_equal(loaded.grey(), GREY)
    x1, _ = preprocess(loaded.frame(0))
    x2, _ = preprocess(GREY)
    assert np.array_equal(x1, x2)


def test_rgb_model_input_is_pil_luma(tmp_path):
    loaded = load_image(_save(tmp_path, "c.png", Image.fromarray(RGB)))
    assert np.array_equal(loaded.grey(), np.asarray(Image.fromarray(RGB).convert("L")))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grey_stretched(tmp_path, suffix):
    a = (RNG.integers(1000, 5000, (20, 30))).astype(np.uint16)
    p = tmp_path / ("g16" + suffix)
    Image.fromarray(a).save(p)
    loaded = load_image(p)
    f = loaded.frame(0)
    _check_frame(f)
    assert loaded.bit_depth >= 16
    assert f.min() == 0 and f.max() == 255
    # monotone: brighter input stays brighter
    order = np.argsort(a.ravel(), kind="stable")
    assert np.all(np.diff(f.ravel()[order].astype(int)) >= 0)


def test_rgba_alpha_composited_over_black(tmp_path):
    rgba = np.dstack([RGB, np.full(GREY.shape, 255, np.uint8)])
    rgba[:10, :, 3] = 0  # transparent band, like the area outside a probe's fan
    f = load_image(_save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"))).frame(0)
    assert f.shape == RGB.shape
    assert not f[:10].any() and np.array_equal(f[10:], RGB[10:])


def test_la_gives_grey(tmp_path):
    la = Image.merge("LA", [Image.fromarray(GREY), Image.fromarray(np.full(GREY.shape, 255, np.uint8))])
    f = load_image(_save(tmp_path, "la.png", la)).frame(0)
    assert f.ndim == 2 and np.array_equal(f, GREY)


def test_palette_grey_and_colour(tmp_path):
    grey_p = Image.fromarray(GREY % 16, "P")
    grey_p.putpalette([v for i in range(16) for v in (i * 17,) * 3])
    f = load_image(_save(tmp_path, "gp.png", grey_p)).frame(0)
    assert f.ndim == 2 and np.array_equal(f, (GREY % 16) * 17)
    col = Image.fromarray(RGB).quantize(32)
    f2 = load_image(_save(tmp_path, "cp.png", col)).frame(0)
    assert f2.ndim == 3 and np.array_equal(f2, np.asarray(col.convert("RGB")))


def test_cmyk_and_bilevel(tmp_path):
    cmyk = Image.fromarray(RGB).convert("CMYK")
    f = load_image(_save(tmp_path, "k.jpg", cmyk, quality=95)).frame(0)
    assert f.shape == RGB.shape and np.abs(f.astype(int) - RGB).mean() < 20
    bw = Image.fromarray(GREY > 128)
    f1 = load_image(_save(tmp_path, "b.tif", bw)).frame(0)
    assert f1.ndim == 2 and set(np.unique(f1)) <= {0, 255} and np.array_equal(f1 > 0, GREY > 128)


def test_jpeg_grey_close(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    loaded = load_image(_save(tmp_path, "s.jpg", Image.fromarray(smooth), quality=95))
    assert loaded.source_format == "JPEG" and np.abs(loaded.frame(0).astype(int) - smooth).max() < 8


def test_exif_orientation_applied(tmp_path):
    im = Image.fromarray(RGB)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    p = _save(tmp_path, "o.jpg", im, exif=exif.tobytes(), quality=95)
    f = load_image(p).frame(0)
    assert f.shape == (53, 37, 3)  # width and height swapped
    expected = np.asarray(Image.open(p).transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(f, expected)


def test_multipage_tiff_frames(tmp_path):
    pages = [Image.fromarray((GREY + 40 * i).astype(np.uint8)) for i in range(4)]
    p = tmp_path / "m.tif"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    loaded = _load_unchanged(p)
    assert loaded.n_frames == 4
    for i in (3, 0, 2, 1, -1):
        assert np.array_equal(loaded.frame(i), np.asarray(pages[i]))
    with pytest.raises(IndexError):
        loaded.frame(4)


# --- bad input -----------------------------------------------------------------------------------


def test_missing_folder_empty_text(tmp_path):
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(tmp_path / "e.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageLoadError, match="not an image file busapp can read"):
        load_image(tmp_path / "notes.txt")


def test_truncated_png_is_damaged(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, "PNG")
    p = tmp_path / "t.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="damaged or incomplete") as e:
        load_image(p)
    assert "Traceback" not in str(e.value) and e.value.__cause__ is None


def test_pixel_limit(tmp_path, monkeypatch):
    p = _save(tmp_path, "big.png", Image.fromarray(GREY))
    monkeypatch.setattr(imageio, "MAX_PIXELS", 100)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(p)


def test_decompression_bomb_png_refused_before_decoding(tmp_path):
    # A 12000 x 12000 PNG of zeros is tiny on disk but 144 megapixels decoded.
    import struct
    import zlib

    w = h = 12000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00" * (w + 1) * 64)  # only a few rows: the header alone must stop it
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    p = tmp_path / "bomb.png"
    p.write_bytes(png)
    t = time.perf_counter()
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(p)
    assert time.perf_counter() - t < 2


def test_file_size_limit(tmp_path, monkeypatch):
    p = _save(tmp_path, "g.png", Image.fromarray(GREY))
    monkeypatch.setattr(imageio, "MAX_FILE_BYTES", 10)
    with pytest.raises(ImageLoadError, match="file is too large"):
        load_image(p)
    assert find_images([tmp_path]) == ([p], [])  # found in a folder; the reason comes when it is opened


def test_decode_time_limit(tmp_path, monkeypatch):
    p = _save(tmp_path, "g.png", Image.fromarray(GREY))
    from busapp.core import raster

    real = raster.load_raster

    def slow(path, data):
        time.sleep(1.5)
        return real(path, data)

    monkeypatch.setattr(raster, "load_raster", slow)
    monkeypatch.setattr(imageio, "DECODE_TIMEOUT_S", 0.2)
    t = time.perf_counter()
    with pytest.raises(ImageLoadError, match=r"longer than 0\.2 seconds"):
        load_image(p)
    assert time.perf_counter() - t < 1.2


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_permission_denied(tmp_path):
    p = _save(tmp_path, "g.png", Image.fromarray(GREY))
    p.chmod(0)
    try:
        with pytest.raises(ImageLoadError, match="not allowed"):
            load_image(p)
    finally:
        p.chmod(0o644)


def test_safe_metadata_raster(tmp_path):
    loaded = load_image(_save(tmp_path, "g.png", Image.fromarray(GREY)))
    assert loaded.safe_metadata()["format"] == "PNG"


# --- folders -------------------------------------------------------------------------------------


def test_find_images_recursive_with_reasons(tmp_path):
    from busapp.core.dicomgen import make_dataset, write_dicom

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    good = [
        _save(tmp_path, "one.png", Image.fromarray(GREY)),
        _save(sub, "two.JPG", Image.fromarray(RGB)),
        write_dicom(make_dataset(GREY), sub / "IM000001"),  # DICOM without an extension
        write_dicom(make_dataset(GREY), sub / "bare", preamble=False),
    ]
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 ...")
    (tmp_path / "fake.png").write_text("not really")
    (tmp_path / "empty.dcm").write_bytes(b"")
    (sub / "junk.dcm").write_bytes(b"\x01" * 300)
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (sub / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    images, skipped = find_images([tmp_path])
    assert sorted(images) == sorted(good)
    reasons = {p.name: r for p, r in skipped}
    assert reasons == {
        "report.pdf": "not an image file",
        "fake.png": "named .png but its content is not a PNG image",
        "empty.dcm": "empty file",
        "junk.dcm": "named .dcm but its content is not DICOM",
        ".DS_Store": "hidden or system file",
        "DICOMDIR": "DICOMDIR (a DICOM folder index, not an image)",
    }
    summary = skipped_summary(skipped)
    assert summary.startswith("Skipped 6 files:") and "1 empty file" in summary
    for p in images:  # everything found also loads
        assert load_image(p).n_frames == 1
    # explicit files and duplicates; a missing path is reported
    images2, skipped2 = find_images([good[0], good[0], tmp_path / "missing.png"])
    assert images2 == [good[0]] and skipped2 == [(tmp_path / "missing.png", "does not exist")]
    assert skipped_summary([]) == ""


# --- damaged files are refused, never analysed as if whole (issue 28, item 2) ---------------------

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "case002.png"


def _sample(mode: str = "L") -> Image.Image:
    return Image.open(SAMPLE).convert(mode)


def _jpeg(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("opts", [{"quality": 90}, {"quality": 85, "restart_marker_blocks": 4},
                                  {"quality": 75, "subsampling": 0, "optimize": True}, {"progressive": True}],
                         ids=["baseline", "restart", "444", "progressive"])
def test_jpeg_cut_short_with_end_marker_is_refused(tmp_path, mode, opts):
    """A real image cut to 40 % with an end-of-image marker appended: libjpeg fills the rest grey."""
    data = _jpeg(_sample(mode), **opts)
    assert load_image(_write_bytes(tmp_path / "whole.jpg", data)).frame(0).shape[:2] == (572, 761)
    cut = _write_bytes(tmp_path / "cut.jpg", data[: int(len(data) * 0.4)] + b"\xff\xd9")
    with pytest.raises(ImageLoadError, match=r"^cut\.jpg: the image file is incomplete \(") as e:
        load_image(cut)
    assert e.value.detail == "incomplete" and str(e.value).count(".") <= 2  # one sentence


@pytest.mark.parametrize("lost", [40, 100])
def test_jpeg_cut_inside_its_last_block_is_refused(tmp_path, lost):
    """A cut in the last blocks: libjpeg fills the cut block with zero bits, so a check that padded
    with zero bits decoded it identically and took it as whole (the fuzz test found it)."""
    data = _jpeg(_sample("RGB").resize((32, 24)), quality=95)
    cut = _write_bytes(tmp_path / "cut.jpg", data[: len(data) - lost] + b"\xff\xd9")
    with pytest.raises(ImageLoadError, match="incomplete"):
        load_image(cut)


def test_jpeg_declaring_10000x10000_over_320x256_of_data_is_refused(tmp_path):
    import struct

    data = bytearray(_jpeg(_sample("L").resize((320, 256))))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 10000, 10000)
    with pytest.raises(ImageLoadError, match="incomplete"):
        load_image(_write_bytes(tmp_path / "claims.jpg", bytes(data)))


def _png(w: int, h: int, rows: bytes, colour_type: int = 0, bit_depth: int = 8) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_png_with_fewer_rows_than_declared_is_refused(tmp_path):
    """A complete compressed stream that holds a third of the rows: Pillow leaves the rest black."""
    a = np.asarray(_sample("L"))
    h, w = a.shape
    rows = b"".join(b"\x00" + a[i].tobytes() for i in range(h // 3))
    with pytest.raises(ImageLoadError, match=r"short\.png: the image file is incomplete \(it holds only 33%"):
        load_image(_write_bytes(tmp_path / "short.png", _png(w, h, rows)))
    whole = b"".join(b"\x00" + a[i].tobytes() for i in range(h))
    assert np.array_equal(load_image(_write_bytes(tmp_path / "whole.png", _png(w, h, whole))).frame(0), a)


def test_interlaced_png_whole_opens_and_cut_is_refused(tmp_path):
    """Adam7: seven passes of sub-images; the expected data size is their sum."""
    import struct
    import zlib

    a = np.asarray(_sample("L").crop((0, 0, 101, 77)))
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in passes for row in a[y0::dy, x0::dx] if row.size)

    def png(data: bytes) -> bytes:
        def chunk(kind: bytes, payload: bytes) -> bytes:
            return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

        ihdr = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 8, 0, 0, 0, 1)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")

    assert np.array_equal(load_image(_write_bytes(tmp_path / "i.png", png(raw))).frame(0), a)
    with pytest.raises(ImageLoadError, match="incomplete"):
        load_image(_write_bytes(tmp_path / "cut.png", png(raw[: len(raw) * 3 // 4])))


def test_png_declaring_10000x10000_over_320x256_of_data_is_refused(tmp_path):
    a = np.asarray(_sample("L").resize((320, 256)))
    rows = b"".join(b"\x00" + a[i].tobytes() + bytes(10000 - 320) for i in range(256))
    with pytest.raises(ImageLoadError, match="incomplete"):
        load_image(_write_bytes(tmp_path / "claims.png", _png(10000, 10000, rows)))


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("PNG", {"optimize": True}), ("JPEG", {"quality": 95}),
                                    ("JPEG", {"progressive": True, "quality": 60}), ("TIFF", {}), ("BMP", {})])
def test_real_images_in_every_encoding_still_open(tmp_path, fmt, kw):
    """No false alarms: real ultrasound images from the data sets, whole, in each encoder setting."""
    import glob

    paths = sorted(glob.glob("/work/shared/datasets/*/benign/*.png"))[:4] or [str(SAMPLE)]
    for i, src in enumerate(paths):
        for mode in ("L", "RGB"):
            p = _save(tmp_path, f"{i}{mode}.{fmt.lower()}", Image.open(src).convert(mode), format=fmt, **kw)
            _check_frame(load_image(p).frame(0))


# --- memory budget (issue 28, item 5) ------------------------------------------------------------


def test_colour_bomb_refused_before_decoding(tmp_path):
    """A 9999 x 9999 16-bit RGBA PNG of zeros (~800 KB) would need ~5 GB to decode and convert."""
    import zlib

    w = h = 9999
    row = b"\x00" * (1 + w * 8)
    comp = zlib.compressobj(9)
    raw = b"".join(comp.compress(row) for _ in range(64)) + comp.flush()  # the header alone must stop it
    p = _write_bytes(tmp_path / "rgba16.png", _png_raw(w, h, raw, colour_type=6, bit_depth=16))
    t = time.perf_counter()
    with pytest.raises(ImageLoadError, match=r"too large to open within busapp's memory limit \(9999 x 9999 pixels; "
                                             r"busapp opens colour images up to \d+ megapixels\)"):
        load_image(p)
    assert time.perf_counter() - t < 2


def test_memory_budget_by_kind(monkeypatch):
    monkeypatch.setattr(imageio, "WORK_BYTES", 1000)
    imageio.check_memory("g.png", 10, 25, "grey")  # 250 px x 4 B
    with pytest.raises(ImageLoadError, match=r"g\.png: .*colour images up to"):
        imageio.check_memory("g.png", 10, 25, "colour")


def test_frame_cache_is_bounded_in_bytes(monkeypatch):
    monkeypatch.setattr(imageio, "FRAME_CACHE_BYTES", 3 * 1000)
    seq = imageio.FrameSequence(10, lambda i: np.full((10, 100), i, np.uint8), "c.dcm")
    for i in range(10):
        assert seq[i][0, 0] == i
    assert len(seq._cache) == 3 and sum(f.nbytes for f in seq._cache.values()) <= 3000


def _png_raw(w: int, h: int, idat: bytes, colour_type: int = 0, bit_depth: int = 8) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# --- non-regular files and the time limit (issue 28, items 8 and 12) ------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    t = time.perf_counter()
    with pytest.raises(ImageLoadError, match=r"^scan\.png: is a pipe \(FIFO\), not an image file"):
        load_image(fifo)
    assert time.perf_counter() - t < 2
    images, skipped = find_images([tmp_path])
    assert images == [] and skipped == [(fifo, "not an ordinary file (a pipe (FIFO))")]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_refused():
    with pytest.raises(ImageLoadError, match=r"zero: is a device, not an image file"):
        load_image("/dev/zero")


def test_time_limit_counts_processor_time_not_waiting(monkeypatch):
    """On a loaded machine the decoding thread waits for the CPU: that must not count as decoding.

    Sleeping stands for being descheduled: 0.6 s of wall time with almost no CPU time, under a
    0.25 s limit. Wall time alone (the old rule) refused it; a CPU-bound loop is still stopped.
    """
    monkeypatch.setattr(imageio, "WALL_FACTOR", 8.0)
    if imageio._own_cpu_clock() is None:
        pytest.skip("this OS cannot measure a thread's processor time")
    assert imageio.run_with_time_limit(lambda: time.sleep(0.6) or "done", 0.25, "slow.png") == "done"

    def spin() -> None:
        end = time.perf_counter() + 5
        while time.perf_counter() < end:
            pass

    t = time.perf_counter()
    with pytest.raises(ImageLoadError, match=r"slow\.png: reading and decoding took longer than 0\.25 seconds"):
        imageio.run_with_time_limit(spin, 0.25, "slow.png")
    assert time.perf_counter() - t < 2.5


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
