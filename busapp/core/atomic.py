"""Atomic output files: write beside the target, then rename, so a crash never leaves half a file.

The temporary name is short (``.busapp-XXXXXXXX.tmp``) so a legal 255-byte target name never
overflows the file system's name limit. Every PNG written here carries busapp's mark
(``output_paths.mark_png``), by which a later run knows the file as its own.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from busapp.core.output_paths import mark_png


def write_bytes_atomic(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically. ``exclusive``: never replace a file that appeared at
    ``path`` meanwhile (``FileExistsError``); by default an existing ``path`` is replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = mark_png(data)
    fd, tmp = tempfile.mkstemp(prefix=".busapp-", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); outputs are ordinary files the user shares.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            _link_no_replace(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _link_no_replace(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if that name is free (a hard link fails if it exists)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network shares): check, then rename
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def write_text_atomic(path: Path, text: str, *, exclusive: bool = False) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), exclusive=exclusive)


def save_mask_png(path: Path, mask: np.ndarray, *, exclusive: bool = False) -> None:
    """A bool mask as an 8-bit {0,255} PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8)).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue(), exclusive=exclusive)
