"""Atomic output files: write beside the target, then rename, so a crash never leaves half a file."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); outputs are ordinary files the user shares.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_mask_png(path: Path, mask: np.ndarray) -> None:
    """A bool mask as an 8-bit {0,255} PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8)).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
