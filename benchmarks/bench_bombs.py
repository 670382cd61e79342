"""Peak memory of opening (and optionally analysing) decompression bombs: issue 28 item 5.

Builds the bomb set in a temporary folder, then opens each file in a fresh child process (so
one file's peak cannot hide another's) and prints the child's peak RSS (``ru_maxrss``) and the
outcome. The promise (docs/threat-model.md): no input makes busapp exceed ``BUDGET_MB`` = 1.5 GB.

    python benchmarks/bench_bombs.py            # load_image + frame 0 + grey(), per file
    python benchmarks/bench_bombs.py --analyse  # the whole `busapp-cli predict` (model included)
    python benchmarks/bench_bombs.py --keep DIR # build the set in DIR and keep it

Exit status 1 when a file's peak exceeds the budget. Takes ~30-60 s on a laptop.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

BUDGET_MB = 1536
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "case002.png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_of_zeros(path: Path, w: int, h: int, bit_depth: int, colour_type: int) -> None:
    """A PNG of w x h zero pixels, compressed row by row (never the whole raw image in memory)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" * (1 + (w * channels * bit_depth + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(h)]
    parts.append(comp.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)))
        f.write(_chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def _jpeg_declaring(path: Path, w: int, h: int, mode: str = "RGB") -> None:
    """A real 320x256 JPEG whose frame header claims w x h (the '19 KB JPEG' class)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(SAMPLE).convert(mode).resize((320, 256)).save(buf, "JPEG", quality=90)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    path.write_bytes(bytes(data))


def _big_black_jpeg(path: Path, side: int) -> None:
    from PIL import Image

    Image.new("RGB", (side, side)).save(path, "JPEG", quality=5)


def _deflated_dicom(path: Path, inflated_mb: int) -> None:
    """Deflated Explicit VR Little Endian: a 4096 x 4096 header with ``inflated_mb`` MB of zeros."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from busapp.core.dicomgen import make_dataset, write_dicom

    ds = make_dataset(np.zeros((8, 8), np.uint8))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    tmp = path.with_suffix(".tmp")
    write_dicom(ds, tmp)
    raw = tmp.read_bytes()
    tmp.unlink()
    # Re-deflate the dataset with an oversized Pixel Data element: pydicom inflates it whole.
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = dcmread(io.BytesIO(raw), force=True)
    n = inflated_mb << 20
    side = int((n // 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    del ds.PixelData
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    header = struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\x00\x00" + struct.pack("<I", 2 * side * side)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [comp.compress(body.getvalue() + header)]
    block = bytes(1 << 20)
    left = 2 * side * side
    while left:
        step = min(left, len(block))
        parts.append(comp.compress(block[:step]))
        left -= step
    parts.append(comp.flush())
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts))


def _native_cine(path: Path, frames: int, side: int) -> None:
    """An uncompressed multi-frame DICOM of ``frames`` x side x side grey frames (the file-size class)."""
    from busapp.core.dicomgen import make_dataset, write_dicom

    ds = make_dataset(np.zeros((2, side, side), np.uint8), multi_frame=True)
    ds.NumberOfFrames = frames
    ds.PixelData = bytes(frames * side * side)
    write_dicom(ds, path)


# The bombs, then the largest inputs that are still opened (just inside each limit).
BOMBS: dict[str, Callable[[Path], None]] = {
    "jpeg_claims_10000x10000.jpg": lambda p: _jpeg_declaring(p, 10000, 10000),
    "jpeg_grey_claims_10000x10000.jpg": lambda p: _jpeg_declaring(p, 10000, 10000, "L"),
    "jpeg_black_9000x9000.jpg": lambda p: _big_black_jpeg(p, 9000),
    "png16_rgba_9999x9999.png": lambda p: _png_of_zeros(p, 9999, 9999, 16, 6),
    "png8_grey_10000x10000.png": lambda p: _png_of_zeros(p, 10000, 10000, 8, 0),
    "png8_rgb_7000x7000.png": lambda p: _png_of_zeros(p, 7000, 7000, 8, 2),
    "png8_rgb_5000x3800.png": lambda p: _png_of_zeros(p, 5000, 3800, 8, 2),
    "png8_rgba_5000x3800.png": lambda p: _png_of_zeros(p, 5000, 3800, 8, 6),
    "png16_grey_7000x7000.png": lambda p: _png_of_zeros(p, 7000, 7000, 16, 0),
    "png16_grey_6600x6600.png": lambda p: _png_of_zeros(p, 6600, 6600, 16, 0),
    "dicom_deflated_1800MB.dcm": lambda p: _deflated_dicom(p, 1800),
    "dicom_native_cine_600MB.dcm": lambda p: _native_cine(p, 600, 1024),
    "dicom_native_cine_1000MB.dcm": lambda p: _native_cine(p, 1000, 1024),
}

_CHILD = r"""
import json, resource, sys, time
from busapp.core.imageio import ImageLoadError, load_image
t = time.perf_counter()
try:
    im = load_image(sys.argv[1])
    im.grey(0)
    outcome = f"opened {im.width}x{im.height}, {im.n_frames} frame(s)"
except ImageLoadError as e:
    outcome = "refused: " + str(e)
print(json.dumps({"outcome": outcome, "s": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, analyse: bool) -> dict:
    """Run one child; its own peak RSS comes from wait4's rusage (ru_maxrss, KiB on Linux)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if analyse:
        cmd = [sys.executable, "-m", "busapp.cli.main", "predict", str(path)]
    else:
        cmd = [sys.executable, "-c", _CHILD, str(path)]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read().decode(errors="replace").strip().splitlines()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip()
    rec = {"s": time.perf_counter() - t, "peak_mb": usage.ru_maxrss / 1024}
    try:
        line = json.loads(out[-1])
    except Exception:
        rec["outcome"] = f"exit {proc.returncode}: {stderr[-200:]}"
        return rec
    if analyse:
        rec["outcome"] = ("refused: " + line["error"]) if line.get("error") else f"analysed: {line.get('label', '?')}"
    else:
        rec["outcome"] = line["outcome"]
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--analyse", action="store_true", help="run `busapp-cli predict` on each file (model included)")
    ap.add_argument("--keep", type=Path, default=None, help="build the files in this folder and keep them")
    ap.add_argument("--only", default="", help="comma-separated substrings of the file names to run")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="busapp-bombs-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        worst = 0.0
        print(f"{'file':32s} {'size':>9s} {'peak RSS':>9s} {'time':>6s}  outcome")
        for name, build in BOMBS.items():
            if args.only and not any(s in name for s in args.only.split(",")):
                continue
            path = folder / name
            if not path.exists():
                build(path)
            rec = measure(path, args.analyse)
            worst = max(worst, rec["peak_mb"])
            size = path.stat().st_size
            size_s = f"{size / 2**20:.1f} MB" if size >= 1 << 20 else f"{size / 1024:.0f} KB"
            print(f"{name:32s} {size_s:>9s} {rec['peak_mb']:7.0f} MB {rec['s']:5.1f}s  {rec['outcome'][:110]}",
                  flush=True)
        verdict = "within" if worst <= BUDGET_MB else "OVER"
        print(f"worst peak {worst:.0f} MB: {verdict} the {BUDGET_MB} MB budget")
    return 0 if worst <= BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
