"""The Linux bundle's trimming helpers (packaging/icu_data.py, packaging/elf_strip.py), without a build."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle only")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


icu_data = _load("icu_data")
elf_strip = _load("elf_strip")


def _qt_lib(pattern: str) -> Path:
    pyside = importlib.util.find_spec("PySide6")
    hits = sorted((Path(pyside.origin).parent / "Qt" / "lib").glob(pattern)) if pyside else []
    if not hits:
        pytest.skip(f"no {pattern} in this PySide6")
    return hits[0]


def test_common_data_round_trip_keeps_items_and_alignment() -> None:
    header = struct.pack("<HBB", 32, 0xDA, 0x27) + struct.pack("<HHBBBB", 20, 0, 0, 0, 2, 0) + b"CmnD" + bytes(16)
    items = (("icudt73l/a.res", b"x" * 5), ("icudt73l/coll/b.res", b"y" * 33), ("icudt73l/z.icu", b"z" * 16))
    blob = icu_data.CommonData(header, items).to_bytes()
    back = icu_data.CommonData.parse(blob)
    assert back.header == header
    assert [n for n, _ in back.items] == [n for n, _ in items]
    for (_, got), (_, want) in zip(back.items, items, strict=True):
        assert got.startswith(want) and set(got[len(want):]) <= {0}
    (count,) = struct.unpack_from("<I", blob, 32)
    offsets = [struct.unpack_from("<II", blob, 36 + 8 * i)[1] for i in range(count)]
    assert count == 3 and all(o % 16 == 0 for o in offsets)


def test_parse_refuses_other_data() -> None:
    with pytest.raises(ValueError):
        icu_data.CommonData.parse(b"\x7fELF" + bytes(60))


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("icudt73l/coll/sv.res", True),  # file names sort in the user's language
        ("icudt73l/coll/ucadata.icu", True),
        ("icudt73l/root.res", True),
        ("icudt73l/res_index.res", True),
        ("icudt73l/zoneinfo64.res", True),
        ("icudt73l/supplementalData.res", True),
        ("icudt73l/nfkc.nrm", True),
        ("icudt73l/de.res", False),
        ("icudt73l/zh_Hant_TW.res", False),
        ("icudt73l/brkitr/cjdict.dict", False),
        ("icudt73l/translit/root.res", False),
        ("icudt73l/zone/en.res", False),
        ("icudt73l/ibm-1390_P110-2003.cnv", False),
        ("icudt73l/unames.icu", False),
        ("icudt73l/rfc3491.spp", False),
    ],
)
def test_keep_item(name: str, kept: bool) -> None:
    assert icu_data.keep_item(name) is kept


_SORT_SWEDISH = """
from functools import cmp_to_key
from PySide6.QtCore import QCollator, QLocale
c = QCollator(QLocale("sv_SE")); c.setNumericMode(True)
print(sorted(["z", "file10", "äb", "File2", "ab"], key=cmp_to_key(c.compare)))
"""


def _sort_with(library: Path) -> str:
    # LD_PRELOAD makes Qt's ICU take its data from `library` (same soname as the one Qt links).
    env = {**os.environ, "LD_PRELOAD": str(library), "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", _SORT_SWEDISH], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@linux_only
@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
def test_trimmed_icu_data_still_collates_and_an_empty_one_does_not(tmp_path: Path) -> None:
    src = _qt_lib("libicudata.so.*")
    out = tmp_path / "trimmed" / src.name
    kept, total = icu_data.trim_icu_library(src, out)
    assert 0 < kept < total
    assert out.stat().st_size < src.stat().st_size / 3
    assert _sort_with(out) == "['ab', 'File2', 'file10', 'z', 'äb']"  # numeric, caseless, Swedish ä after z

    # The same check with no data at all sorts by code point: the check above can fail.
    symbol, blob = icu_data.data_symbol(src)
    empty = tmp_path / "empty" / src.name
    empty.parent.mkdir()
    icu_data.link_data_library(symbol, icu_data.CommonData(icu_data.CommonData.parse(blob).header, ()).to_bytes(),
                               src.name, empty)
    assert _sort_with(empty) != "['ab', 'File2', 'file10', 'z', 'äb']"


@linux_only
def test_segments_check_accepts_a_sound_library_and_rejects_a_misaligned_one(tmp_path: Path) -> None:
    good = _qt_lib("libQt6Core.so.*")
    assert elf_strip.load_segments_aligned(good)
    data = bytearray(good.read_bytes()[:65536])
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", data, at)[0] == 1:  # first PT_LOAD: move its file offset off the page
            off = struct.unpack_from("<Q", data, at + 8)[0]
            struct.pack_into("<Q", data, at + 8, off + 8)
            break
    bad = tmp_path / "bad.so"
    bad.write_bytes(bytes(data))
    assert not elf_strip.load_segments_aligned(bad)
    (tmp_path / "text.so").write_text("not ELF")
    assert not elf_strip.load_segments_aligned(tmp_path / "text.so")


@linux_only
@pytest.mark.skipif(shutil.which("strip") is None, reason="no strip (binutils)")
def test_strip_libraries_strips_only_what_it_can_strip_soundly(tmp_path: Path) -> None:
    import numpy

    libs = sorted((Path(numpy.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas*.so"))
    ext = next((Path(numpy.__file__).parent / "_core").glob("_multiarray_umath*.so"))
    toc = [(f"numpy/_core/{ext.name}", str(ext), "EXTENSION"), ("notes.txt", str(REPO / "README.md"), "DATA")]
    toc += [(f"numpy.libs/{p.name}", str(p), "BINARY") for p in libs]
    out = elf_strip.strip_libraries(toc, tmp_path / "stripped")
    by_dest = {dest: Path(src) for dest, src, _ in out}
    assert by_dest[toc[0][0]].is_relative_to(tmp_path)  # unstripped wheel extension: stripped copy
    assert by_dest[toc[0][0]].stat().st_size < ext.stat().st_size
    assert by_dest["notes.txt"] == REPO / "README.md"  # data untouched
    for p in libs:  # patchelf'ed by auditwheel: if strip misaligns it (binutils here does), the original ships
        raw = tmp_path / "raw" / p.name
        raw.parent.mkdir(exist_ok=True)
        subprocess.run(["strip", "--strip-unneeded", "-o", str(raw), str(p)], check=True)
        shipped = by_dest[f"numpy.libs/{p.name}"]
        assert shipped == p if not elf_strip.load_segments_aligned(raw) else elf_strip.load_segments_aligned(shipped)


def _spec_excludes() -> list[str]:
    tree = ast.parse((REPO / "build.spec").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "excludes" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("build.spec has no excludes list")


def _modules_used(path: Path) -> set[str]:
    """Modules a source file imports, plus numpy submodules it reaches as attributes (np.random...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used, numpy_names = set(), {"numpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                used.add(a.name)
                if a.name == "numpy":
                    numpy_names.add(a.asname or a.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            used.add(node.module)
            used.update(f"{node.module}.{a.name}" for a in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in numpy_names:
            used.add(f"numpy.{node.attr}")
    return used


def test_the_app_uses_no_module_the_bundle_leaves_out() -> None:
    # The bundle leaves modules out to stay small (build.spec excludes); app code that starts using one
    # would fail only in the bundle, only when that code runs. Training code is not bundled.
    excludes = _spec_excludes()
    assert "numpy.fft" in excludes and "tensorflow" in excludes  # the parse found the real list
    offenders = []
    for path in sorted((REPO / "busapp").rglob("*.py")):
        if "training" in path.relative_to(REPO / "busapp").parts:
            continue
        for name in _modules_used(path):
            hits = [e for e in excludes if name == e or name.startswith(e + ".")]
            if hits:
                offenders.append(f"{path.relative_to(REPO)}: {name} (excluded as {hits[0]})")
    assert not offenders, "\n".join(offenders)


def test_the_excluded_module_check_sees_attribute_use(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import numpy as np\nfrom PIL import WebPImagePlugin\nx = np.fft.rfft([1.0])\n")
    assert {"numpy.fft", "PIL.WebPImagePlugin"} <= _modules_used(f)
