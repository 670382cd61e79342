"""Strip the Linux bundle's shared libraries safely (build.spec uses it; no PyInstaller import here).

Some wheels ship their libraries unstripped: libpython 23 -> 6 MB, CharLS 6.7 -> 0.6 MB, OpenJPEG,
Pillow, LiteRT: ~38 MB in all. `strip --strip-unneeded` drops the symbol tables and debug info and
keeps the dynamic symbols the libraries link by. PyInstaller's own ``strip=True`` strips every file,
which breaks the ones auditwheel's patchelf already rewrote (numpy's OpenBLAS and gfortran: strip
moves their segments off the page boundary and the loader refuses them with "ELF load command
address/offset not page-aligned"), so each stripped copy is checked and used only if it is sound.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

MIN_SAVING = 65536  # bytes: below this a library is collected as it is


def load_segments_aligned(path: Path) -> bool:
    """True if `path` is a 64-bit little-endian ELF file whose loadable segments are page-aligned."""
    with open(path, "rb") as f:
        head = f.read(65536)
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False
    phoff = struct.unpack_from("<Q", head, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if phoff + phnum * phentsize > len(head):
        return False
    for i in range(phnum):
        typ, _flags, off, vaddr, _paddr, _filesz, _memsz, align = struct.unpack_from("<IIQQQQQQ", head,
                                                                                     phoff + i * phentsize)
        if typ == 1 and align > 1 and (off - vaddr) % align:  # PT_LOAD
            return False
    return True


def stripped_copy(source: Path, target: Path, strip: str) -> Path | None:
    """`target`, a stripped copy of `source` (made once), or None if it saves little or is unsound."""
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([strip, "--strip-unneeded", "-o", str(target), str(source)], check=True, capture_output=True)
    if source.stat().st_size - target.stat().st_size < MIN_SAVING or not load_segments_aligned(target):
        return None
    return target


def strip_libraries(binaries: list, cache: Path) -> list:
    """PyInstaller's binaries TOC with stripped copies (cached under `cache`) where that is safe."""
    strip = shutil.which("strip")
    if strip is None:
        print("build.spec: WARNING: no `strip` (binutils) on this machine: the bundle is ~38 MB larger")
        return binaries
    out = []
    for dest, src, typ in binaries:
        if typ in ("BINARY", "EXTENSION") and ".so" in Path(dest).name:
            copy = stripped_copy(Path(src), cache / dest, strip)
            if copy is not None:
                src = str(copy)
        out.append((dest, src, typ))
    return out
