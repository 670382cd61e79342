"""Where the app's read-only resources (samples, icons, styles) live, from source and when frozen.

From source: ``<repo>/resources``. In the PyInstaller one-folder bundle: ``<bundle>/_internal/resources``
(``sys._MEIPASS``), placed there by ``build.spec``. Qt-free, so the self-test and the CLI can use it.
Everything here is read-only: the bundle may be installed in a folder the user cannot write to.
"""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_root() -> Path:
    """The folder holding ``resources/`` and ``models/``: the repo root, or ``sys._MEIPASS`` when frozen."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parents[1]


def resources_dir() -> Path:
    return bundle_root() / "resources"


def resource_path(*parts: str) -> Path:
    """``resources_dir() / parts``; e.g. ``resource_path("icons", "busapp.svg")``. Not checked for existence."""
    return resources_dir().joinpath(*parts)


def samples_dir() -> Path:
    return resources_dir() / "samples"


def sample_images() -> list[Path]:
    """The bundled sample images, sorted by name (empty if none are installed)."""
    d = samples_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES)


def icon_path(name: str = "busapp") -> Path | None:
    """The app icon: SVG if present (scales cleanly), else PNG; None if neither is installed."""
    for suffix in (".svg", ".png"):
        p = resource_path("icons", name + suffix)
        if p.is_file():
            return p
    return None
