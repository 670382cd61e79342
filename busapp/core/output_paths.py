"""Where busapp may write, and how a failed write is said to a user (Qt-free).

Every writer (``busapp-cli predict``, batch, the GUI's exports) follows one rule: an output never
replaces an input, nor any file busapp did not write itself.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

_ERRNO_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EROFS: "the disk is read-only",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "a folder has that name",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EEXIST: "a file of that name exists already",
    errno.EIO: "the disk reported an input/output error",
    errno.EMFILE: "too many files are open",
    errno.EFBIG: "the file is too large for this disk",
}


def describe_os_error(e: OSError) -> str:
    """A few words for a user ("the disk is full"), never the raw "[Errno 28] ..." text."""
    if isinstance(e, PermissionError):
        return _ERRNO_WORDS[errno.EACCES]
    words = _ERRNO_WORDS.get(e.errno) if e.errno is not None else None
    return words or "the operating system refused it"


class OutputRefused(ValueError):
    """busapp will not write there (it would replace a user's file or mix outputs with inputs); the
    message is one sentence for the user."""


# --- busapp's own files -------------------------------------------------------------------------
# busapp may replace a file only if it wrote that file itself. It recognises its own outputs by a
# mark inside them: a PNG's tEXt "Software" chunk, a CSV's header, a PDF's Creator.

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_MARK_KEY = b"Software"
PNG_MARK = b"busapp"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def mark_png(data: bytes) -> bytes:
    """PNG bytes with busapp's mark (a tEXt chunk right after IHDR); other bytes unchanged."""
    if not data.startswith(PNG_SIGNATURE) or _png_has_mark(data):
        return data
    ihdr_end = len(PNG_SIGNATURE) + 8 + struct.unpack(">I", data[8:12])[0] + 4
    return data[:ihdr_end] + _png_chunk(b"tEXt", PNG_MARK_KEY + b"\0" + PNG_MARK) + data[ihdr_end:]


def _png_has_mark(head: bytes) -> bool:
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(head):
        (length,), kind = struct.unpack(">I", head[pos : pos + 4]), head[pos + 4 : pos + 8]
        if kind == b"tEXt":
            key, _, value = head[pos + 8 : pos + 8 + length].partition(b"\0")
            if key == PNG_MARK_KEY and value.startswith(PNG_MARK):
                return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def written_by_busapp(path: Path) -> bool:
    """Whether ``path`` is a file busapp wrote (by the mark inside it), so busapp may replace it."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return False
    if head.startswith(PNG_SIGNATURE):
        return _png_has_mark(head)
    if head.startswith(b"%PDF"):
        return _pdf_has_mark(head) or _pdf_has_mark(_tail(path))
    if path.suffix.lower() == ".csv":
        return is_busapp_csv_header(head.split(b"\n", 1)[0].decode("utf-8", "replace"))
    return False


# The report's Info dictionary: /Creator (busapp x.y), as Qt writes it (UTF-16 with a BOM) or plain.
_PDF_MARKS = (b"/Creator (\xfe\xff" + "busapp".encode("utf-16-be"), b"/Creator (busapp")


def _pdf_has_mark(data: bytes) -> bool:
    return any(m in data for m in _PDF_MARKS)


def _tail(path: Path, n: int = 64 * 1024) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - n))
        return f.read()


BUSAPP_CSV_COLUMNS = ("file", "model_name", "model_version", "mask", "sha256", "error")


def is_busapp_csv_header(line: str) -> bool:
    """A batch ``results.csv`` header: starts with "file" and has busapp's bookkeeping columns."""
    cols = [c.strip().strip('"') for c in line.strip().split(",")]
    return bool(cols) and cols[0] == "file" and set(BUSAPP_CSV_COLUMNS) <= set(cols)


# --- names --------------------------------------------------------------------------------------

NAME_MAX = 255  # bytes per file name on Linux/macOS file systems (and 255 UTF-16 units on NTFS)


def fit_name(stem: str, suffix: str, limit: int = NAME_MAX) -> str:
    """``stem + suffix``, with the stem shortened (its start, ``~`` and a hash of the whole stem,
    so two long names stay distinct) when the name would exceed ``limit`` bytes."""
    name = stem + suffix
    if len(os.fsencode(name)) <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(stem)).hexdigest()[:10]
    budget = limit - len(os.fsencode(suffix)) - len(digest) - 1
    short = os.fsencode(stem)[:budget].decode("utf-8", "ignore")  # whole characters only
    return f"{short}~{digest}{suffix}"


def text_safe(name: str) -> str:
    """A name as text that is valid UTF-8: bytes that were not (surrogate escapes) become ``%XX``."""
    return "".join(f"%{ord(c) - 0xDC00:02X}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in name)


def claim_output(
    path: Path, *, protected: Iterable[Path] = (), taken: set[str] | None = None
) -> tuple[Path, str | None]:
    """A path to write ``path``'s output to: ``path`` itself if it does not exist or busapp wrote
    it (and it is not one of the ``protected`` inputs), else the first ``<stem>-N<suffix>`` that is
    free. Returns (path, None) or (other path, a sentence saying why). ``taken`` (case-folded names
    already given out in this run) keeps names distinct even on a case-insensitive disk."""
    path = Path(path)
    guarded = {_identity(p) for p in protected}
    taken = taken if taken is not None else set()
    candidate, n = path, 1
    while True:
        key = os.fsdecode(os.fsencode(candidate)).casefold()
        exists = os.path.lexists(candidate)
        usable = key not in taken and (
            not exists or (_identity(candidate) not in guarded and written_by_busapp(candidate))
        )
        if usable:
            taken.add(key)
            break
        n += 1
        candidate = path.with_name(fit_name(f"{_stem(path)}-{n}", _suffix(path)))
    if candidate == path:
        return path, None
    why = "is an input" if _identity(path) in guarded else "exists and busapp did not write it"
    if not os.path.lexists(path):
        why = "is already used by another output of this run"
    return candidate, f"{text_safe(path.name)} {why}, so busapp wrote {text_safe(candidate.name)} instead."


def _stem(path: Path) -> str:
    return path.name[: -len(_suffix(path))] if _suffix(path) else path.name


def _suffix(path: Path) -> str:
    return ".mask.png" if path.name.endswith(".mask.png") else path.suffix


def _identity(path: Path) -> tuple[int, int] | str:
    """What makes two paths the same file (device and inode), or the resolved path if absent."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return str(Path(path).resolve())


def check_separate_folders(inputs: Path, out: Path) -> None:
    """Refuse an output folder that is, contains or lies inside the input folder."""
    a, b = Path(inputs).resolve(), Path(out).resolve()
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        raise OutputRefused(
            f"The output folder {text_safe(str(out))} and the image folder {text_safe(str(inputs))} overlap: "
            "choose an output folder outside the image folder (and not above it)."
        )


# --- CSV cells (OWASP "CSV injection") ----------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: valid UTF-8 (``text_safe``), and a leading ``'`` when it
    starts like a formula (``= + - @``, tab, CR) unless it is a plain number."""
    text = text_safe(str(value))
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def raw_path_field(rel: str) -> str:
    """A relative path's exact bytes, percent-encoded (RFC 3986): lossless, ASCII, never formula-like."""
    from urllib.parse import quote

    text = quote(os.fsencode(rel), safe="/")
    return "%2D" + text[1:] if text.startswith("-") else text


def rel_from_raw_field(field: str) -> str:
    """The inverse of ``raw_path_field`` (as a str with surrogate escapes, like ``os.fsdecode``)."""
    from urllib.parse import unquote_to_bytes

    return os.fsdecode(unquote_to_bytes(field))
