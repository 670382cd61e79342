"""A smaller ICU data library for the Linux bundle (build.spec uses it; no Qt, no PyInstaller here).

PySide6's Qt links ICU, whose data library (libicudata.so.NN, 32 MB) holds every ICU service's data
for every locale. Qt calls only three ICU services: collation (QCollator: sorting file names in the
file dialogs), code-page conversion (QStringConverter for legacy encodings by name) and time zones
(QTimeZone display names). Case mapping and normalisation tables are compiled into libicuuc.

This module rewrites the library with the items busapp can reach (see `keep_item`): collation for
every locale (sorting follows the user's language), the shared locale data and calendar/time-zone
rules, normalisation. It leaves out break iterators and dictionaries, transliteration, the per-locale
formatting data and unit/currency/language/region/zone display names, number spell-out and the
legacy code-page tables (Qt converts UTF-8/16/32 and Latin-1 itself): ~5 MB of 31 MB stay.

The data library is one exported symbol, ``icudtNN_dat``: ICU's "common data" package (a header, a
table of contents sorted by item name, then the items, each 16-byte aligned). We read it from the
ELF file, keep the chosen items, and link the new package into a data-only shared library with the
C compiler (``cc -shared -nostdlib``, the bytes included with the assembler's ``.incbin``).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Subtrees no Qt call reaches. (zone/ is time-zone *display names*: without it ICU formats them as
# "GMT+01:00"; the zone rules, zoneinfo64.res etc., are top-level items and stay.)
DROPPED_TREES = frozenset({"brkitr", "curr", "lang", "rbnf", "region", "translit", "unit", "zone"})


def keep_item(name: str) -> bool:
    """Whether an item ("icudt73l/coll/de.res") goes into the trimmed package."""
    parts = name.split("/")
    if len(parts) > 2:
        return parts[1] not in DROPPED_TREES
    leaf = parts[-1]
    # Legacy code-page tables (EBCDIC, CJK, IBM/Windows code pages: 5 MB), Unicode character names,
    # and the IDNA/StringPrep/spoof-check data (Qt's QUrl does IDNA itself).
    if leaf.endswith((".cnv", ".spp", ".cfu")) or leaf in ("unames.icu", "uts46.nrm"):
        return False
    # The top-level bundle of each locale ("de.res", "zh_Hant_TW.res": 3 MB) holds its formatting
    # data (dates, numbers, display names), none of which Qt asks ICU for (Qt has its own CLDR
    # tables); collation reads coll/ only. Kept: root, the index and the shared data (supplemental
    # data, likely subtags, time-zone rules, plurals, ...).
    return leaf in ("root.res", "res_index.res") or not _LOCALE_BUNDLE.fullmatch(leaf)


_LOCALE_BUNDLE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]+)*\.res")


@dataclass(frozen=True)
class CommonData:
    header: bytes  # the package's own data header (kept as is: format and ICU data version)
    items: tuple[tuple[str, bytes], ...]  # (name, bytes), sorted by name as ICU's lookup needs

    @classmethod
    def parse(cls, blob: bytes) -> CommonData:
        header_size, magic1, magic2 = struct.unpack_from("<HBB", blob, 0)
        if (magic1, magic2) != (0xDA, 0x27) or blob[12:16] != b"CmnD" or blob[8] != 0:
            raise ValueError("not a little-endian ICU common data package")
        toc = header_size
        (count,) = struct.unpack_from("<I", blob, toc)
        entries = [struct.unpack_from("<II", blob, toc + 4 + 8 * i) for i in range(count)]
        items = []
        for i, (name_off, data_off) in enumerate(entries):
            start = toc + name_off
            name = blob[start:blob.index(b"\0", start)].decode("ascii")
            end = toc + entries[i + 1][1] if i + 1 < count else len(blob)
            items.append((name, blob[toc + data_off:end]))
        return cls(blob[:header_size], tuple(items))

    def to_bytes(self) -> bytes:
        names = b"".join(n.encode("ascii") + b"\0" for n, _ in self.items)
        toc_size = 4 + 8 * len(self.items)
        data_start = _align(toc_size + len(names))
        entries, body, offset = [], bytearray(), data_start
        name_off = toc_size
        for name, data in self.items:
            entries.append(struct.pack("<II", name_off, offset))
            name_off += len(name) + 1
            padded = data + b"\0" * (_align(len(data)) - len(data))
            body += padded
            offset += len(padded)
        toc = struct.pack("<I", len(self.items)) + b"".join(entries) + names
        return self.header + toc + b"\0" * (data_start - len(toc)) + bytes(body)

    def filtered(self, keep=keep_item) -> CommonData:
        return CommonData(self.header, tuple((n, d) for n, d in self.items if keep(n)))

    def size(self) -> int:
        return sum(len(d) for _, d in self.items)


def _align(n: int, to: int = 16) -> int:
    return (n + to - 1) // to * to


def data_symbol(path: Path) -> tuple[str, bytes]:
    """The ``icudtNN_dat`` symbol of an ICU data library (64-bit little-endian ELF): name, bytes."""
    elf = path.read_bytes()
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError(f"{path.name}: not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    for _name, typ, _flags, _addr, off, size, link, _info, _sh_align, entsize in sections:
        if typ != 11:  # SHT_DYNSYM
            continue
        str_off = sections[link][4]
        for k in range(size // entsize):
            st_name, _st_info, _other, shndx, value, sym_size = struct.unpack_from("<IBBHQQ", elf, off + k * entsize)
            name = elf[str_off + st_name:elf.index(b"\0", str_off + st_name)].decode("ascii")
            if re.fullmatch(r"icudt\d+_dat", name) and 0 < shndx < shnum:
                sec = sections[shndx]
                start = value - sec[3] + sec[4]
                return name, elf[start:start + sym_size]
    raise ValueError(f"{path.name}: no icudtNN_dat symbol: not an ICU data library")


def link_data_library(symbol: str, data: bytes, soname: str, out: Path, cc: str = "cc") -> None:
    """Write a data-only shared library exporting `symbol` (16-byte aligned, read-only) = `data`."""
    with tempfile.TemporaryDirectory() as tmp:
        dat = Path(tmp) / "icu.dat"
        dat.write_bytes(data)
        asm = Path(tmp) / "icudata.S"
        asm.write_text(
            f'\t.section .rodata\n\t.globl {symbol}\n\t.type {symbol}, @object\n\t.balign 16\n{symbol}:\n'
            f'\t.incbin "{dat}"\n\t.size {symbol}, . - {symbol}\n'
            '\t.section .note.GNU-stack,"",@progbits\n'
        )
        subprocess.run([cc, "-shared", "-nostdlib", f"-Wl,-soname,{soname}", "-Wl,-z,noexecstack", "-o", str(out),
                        str(asm)], check=True, capture_output=True)


def trim_icu_library(src: Path, out: Path, cc: str | None = None) -> tuple[int, int]:
    """Write a trimmed copy of the ICU data library `src` to `out`; returns (items kept, items before).

    The result is read back and compared item by item, so a wrong package never reaches the bundle.
    """
    symbol, blob = data_symbol(src)
    full = CommonData.parse(blob)
    trimmed = full.filtered()
    out.parent.mkdir(parents=True, exist_ok=True)
    link_data_library(symbol, trimmed.to_bytes(), src.name, out, cc or os.environ.get("CC", "cc"))
    symbol2, blob2 = data_symbol(out)
    back = CommonData.parse(blob2).items
    # (each item read back may carry the alignment padding the original last item lacked)
    if symbol2 != symbol or len(back) != len(trimmed.items) or any(
            n2 != n or not d2.startswith(d) for (n2, d2), (n, d) in zip(back, trimmed.items, strict=True)):
        raise RuntimeError(f"{out}: the trimmed ICU data does not read back as written")
    return len(trimmed.items), len(full.items)
