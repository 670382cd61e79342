"""Expanding dropped folders into image files, as a background task (Qt-free).

``find_images`` opens the start of every file to recognise images (DICOM often has no
extension); on a large or network folder that takes seconds, which must not freeze the window, so
the window submits ``scan_folders`` to its scan executor (``tasks.SerialExecutor``).
"""

from __future__ import annotations

from pathlib import Path

from busapp.gui.tasks import Task


def scan_folders(task: Task, folders: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(image files found, (path, why it was left out)); an unreadable folder is one reason."""
    from busapp.core.imageio import find_images

    try:
        return find_images(folders)
    except OSError as e:  # an unreadable folder must not take the app down
        return [], [(f, f"could not read the folder ({e.strerror or e})") for f in folders]
