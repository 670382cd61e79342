"""Fuzz: thousands of truncated, bit-flipped, spliced and random files thrown at load_image.

Every input must end in a LoadedImage (frames uint8 grey/RGB) or an ImageLoadError with a
message, within the decode time limit: no other exception, no hang. The count is printed and
asserted (set BUSAPP_FUZZ_EXAMPLES to run more, e.g. overnight).

"cut+end" cuts a file and appends its format's end marker (JPEG EOI, PNG IEND), the damage that
decoders fill in silently (issue 28, item 2): a PNG or sequential JPEG cut inside its image data
must be refused, never opened. A second test throws a fixed set of damaged files at busapp in a
fresh process and checks that native decoders print nothing to stderr.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from busapp.core import imageio
from busapp.core.dicomgen import make_dataset, us_region, write_dicom
from busapp.core.imageio import ImageLoadError, load_image

N_EXAMPLES = int(os.environ.get("BUSAPP_FUZZ_EXAMPLES", "5000"))
TIME_LIMIT_S = 10.0  # per decode, during the fuzz run
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"MM\x00*", b"\0" * 128 + b"DICM",
          b"\x08\x00\x05\x00CS", b"\x02\x00\x00\x00UL"]


def _pil(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@cache
def seeds() -> tuple[bytes, ...]:
    rng = np.random.default_rng(11)
    grey = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = [
        _pil(Image.fromarray(grey), "PNG"),
        _pil(Image.fromarray(np.dstack([rgb, grey])), "PNG"),
        _pil(Image.fromarray(grey.astype(np.uint16) * 200), "PNG"),
        _pil(Image.fromarray(rgb).quantize(16), "PNG"),
        _pil(Image.fromarray(rgb), "JPEG", quality=80),
        _pil(Image.fromarray(rgb), "BMP"),
        _pil(Image.fromarray(grey), "TIFF", save_all=True, append_images=[Image.fromarray(255 - grey)]),
        _pil(Image.fromarray(rgb).convert("CMYK"), "TIFF", compression="tiff_lzw"),
    ]
    tmp = Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"busapp-fuzz-seeds-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    big = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    datasets = [
        make_dataset(grey, pixel_spacing_mm=(0.1, 0.1)),
        make_dataset(np.stack([rgb, rgb // 2]), multi_frame=True),
        make_dataset(np.stack([grey, grey // 2, grey // 3]), multi_frame=True, transfer_syntax=RLELossless),
        make_dataset(big, transfer_syntax=JPEG2000Lossless, us_regions=[us_region(0, 0, 31, 31, 0.01, 0.01)]),
        make_dataset(grey, photometric="MONOCHROME1"),
        make_dataset(rgb, photometric="YBR_FULL"),
    ]
    for i, ds in enumerate(datasets):
        out.append(write_dicom(ds, tmp / f"{i}.dcm").read_bytes())
    out.append(write_dicom(datasets[0], tmp / "bare.dcm", preamble=False).read_bytes())
    for name in ("SC_rgb_small_odd_jpeg.dcm", "JPEGLSNearLossless_08.dcm", "MR_small_jp2klossless.dcm",
                 "SC_rgb_rle_2frame.dcm", "image_dfl.dcm"):
        out.append(Path(get_testdata_file(name)).read_bytes())
    return tuple(out)


_END_MARKERS = {b"\x89PNG": b"\x00\x00\x00\x00IEND\xaeB`\x82", b"\xff\xd8\xff\xe0": b"\xff\xd9"}
# seed index -> cuts before this offset lose image data: PNG seeds (up to the end of their last IDAT)
# and the sequential JPEG seed (before its last 16 bytes). Filled in by _cut_oracle().
_CUT_ORACLE: dict[int, int] = {}


def _cut_oracle() -> dict[int, int]:
    out = {}
    for i, s in enumerate(seeds()):
        if s.startswith(b"\x89PNG"):
            out[i] = s.rfind(b"IDAT") + 4  # inside the last IDAT chunk (its data or CRC)
        elif s.startswith(b"\xff\xd8") and b"\xff\xc0" in s[:2048]:
            out[i] = len(s) - 16
    return out


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    pool = seeds()
    index = draw(st.integers(0, len(pool) - 1))
    data = bytearray(pool[index])
    op = draw(st.sampled_from(["truncate", "flip", "overwrite", "bigint", "splice", "random", "flip+truncate",
                               "cut+end"]))
    if op == "cut+end":
        cut = draw(st.integers(0, max(0, len(data) - 1)))
        end = _END_MARKERS.get(bytes(data[:4]), b"\xff\xd9")
        must_fail = index in _CUT_ORACLE and cut < _CUT_ORACLE[index]
        return ("cut+end!" if must_fail else op), bytes(data[:cut]) + end
    if op in ("truncate", "flip+truncate"):
        del data[draw(st.integers(0, max(0, len(data) - 1))) :]
    if op in ("flip", "flip+truncate") and data:
        for _ in range(draw(st.integers(1, 16))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
    if op == "overwrite" and data:
        pos = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[pos : pos + len(chunk)] = chunk
    if op == "bigint" and len(data) > 4:
        # sizes, lengths and counts in headers: the classic bomb / overflow triggers
        pos = draw(st.integers(0, min(len(data), 1024) - 4))
        data[pos : pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\x00\x00", b"\x00\x00\xff\x7f",
                                                    b"\x00\x00\x00\x00", b"\x10\x27\x00\x00"]))
    if op == "splice":
        other = pool[draw(st.integers(0, len(pool) - 1))]
        data = data[: draw(st.integers(0, len(data)))] + other[draw(st.integers(0, len(other))) :]
    if op == "random":
        data = bytearray(draw(st.sampled_from([b"", *MAGICS])) + draw(st.binary(max_size=2048)))
    return op, bytes(data)


def test_fuzz_loader(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(imageio, "DECODE_TIMEOUT_S", TIME_LIMIT_S)
    stats: Counter[str] = Counter()
    slowest = [0.0]
    path = tmp_path / "fuzz.bin"
    assert len(seeds()) >= 15 and all(load_image(_write(path, s)).n_frames >= 1 for s in seeds())
    _CUT_ORACLE.update(_cut_oracle())
    assert len(_CUT_ORACLE) >= 5

    @settings(max_examples=N_EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(mutated())
    def run(case: tuple[str, bytes]) -> None:
        op, data = case
        must_fail = op.endswith("!")
        op = op.rstrip("!")
        stats["tried"] += 1
        stats[f"op:{op}"] += 1
        _write(path, data)
        t = time.perf_counter()
        try:
            loaded = load_image(path)
            for i in sorted({0, loaded.n_frames - 1}):
                try:
                    f = loaded.frame(i)
                except ImageLoadError as e:
                    assert str(e).startswith("fuzz.bin: ") and len(str(e)) > 20
                    stats["damaged frame"] += 1
                    continue
                assert f.dtype == np.uint8 and f.size > 0
                assert f.ndim == 2 or (f.ndim == 3 and f.shape[2] == 3)
            assert not must_fail, "a PNG/JPEG cut inside its image data was opened as if whole"
            stats["image"] += 1
        except ImageLoadError as e:
            msg = str(e)
            assert msg.startswith("fuzz.bin: ") and len(msg) > 20 and "Traceback" not in msg
            stats["error"] += 1
            stats["cut refused"] += must_fail
        elapsed = time.perf_counter() - t
        slowest[0] = max(slowest[0], elapsed)
        assert elapsed < 3 * TIME_LIMIT_S + 5  # load + up to two frames, each under the limit

    start = time.perf_counter()
    run()
    total = time.perf_counter() - start
    with capsys.disabled():
        ops = ", ".join(f"{k[3:]} {v}" for k, v in sorted(stats.items()) if k.startswith("op:"))
        print(f"\nfuzz_loader: {stats['tried']} inputs in {total:.1f} s ({stats['image']} opened, "
              f"{stats['error']} clear errors, {stats['damaged frame']} damaged frames, {stats['cut refused']} cut files "
              f"refused as they must be; slowest {slowest[0]:.2f} s) "
              f"[{ops}]")
    assert stats["tried"] >= min(N_EXAMPLES, 1000)
    assert stats["image"] + stats["error"] == stats["tried"]
    assert stats["image"] > 0 and stats["error"] > 0  # both outcomes were exercised


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_native_decoders_print_nothing(tmp_path):
    """Damaged files of every seed kind, opened in a fresh process: stderr stays empty.

    libtiff ("LZWDecode: Not enough data ...") and GDCM print about damaged data; busapp's users
    get one clear message instead, and the CLI's stderr stays readable.
    """
    import random

    rnd = random.Random(5)
    files = []
    for si, s in enumerate(seeds()):
        for k in range(12):
            d = bytearray(s)
            if k % 3 == 0:
                del d[rnd.randrange(len(d)) :]
            else:
                for _ in range(rnd.randint(1, 8)):
                    d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
            files.append(_write(tmp_path / f"{si}_{k}.bin", bytes(d)))
    try:  # the frame that makes GDCM abort (tests/core/test_dicom_gdcm_crash.py)
        from test_dicom_gdcm_crash import _damaged_file
    except ImportError:
        _damaged_file = None
    if _damaged_file is not None:
        files.append(_damaged_file(tmp_path))
    code = textwrap.dedent("""
        import sys
        from busapp.core.imageio import ImageLoadError, load_image
        n = 0
        for p in sys.argv[1:]:
            try:
                im = load_image(p)
                im.frame(im.n_frames - 1)
            except ImageLoadError:
                pass
            n += 1
        print(n)
    """)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == str(len(files))
    assert run.stderr == ""
