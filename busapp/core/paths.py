"""Per-user folders (Qt-free), so the CLI, the GUI and the tests agree on where data lives."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from busapp import APP_NAME


def user_data_dir(create: bool = True) -> Path:
    """The user's busapp data folder: ``$BUSAPP_DATA_DIR`` if set (tests), else the platform's.

    Linux: ``$XDG_DATA_HOME/busapp`` or ``~/.local/share/busapp``; Windows: ``%APPDATA%\\busapp``;
    macOS: ``~/Library/Application Support/busapp``.
    """
    env = os.environ.get("BUSAPP_DATA_DIR")
    if env:
        path = Path(env)
    elif sys.platform == "win32":
        path = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / APP_NAME
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / APP_NAME
    else:
        path = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP_NAME
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
