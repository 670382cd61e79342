"""Expanding dropped folders into image files off the GUI thread.

``find_images`` opens the start of every file to recognise images (DICOM often has no
extension); on a large or network folder that takes seconds, which must not freeze the window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class FolderScanner(QObject):
    """Lives in the GUI thread; ``scanned(files, skipped)`` arrives there, queued from the pool."""

    scanned = Signal(object, object)  # list[Path], list[tuple[Path, str]]

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one scan at a time keeps the list in drop order

    def scan(self, folders: list[Path]) -> None:
        self._pool.start(_ScanJob(self, folders))

    def wait(self, timeout_ms: int = 5000) -> bool:
        return self._pool.waitForDone(timeout_ms)


class _ScanJob(QRunnable):
    def __init__(self, owner: FolderScanner, folders: list[Path]) -> None:
        super().__init__()
        self._owner, self._folders = owner, folders

    def run(self) -> None:
        from busapp.core.imageio import find_images

        try:
            found, skipped = find_images(self._folders)
        except Exception as e:  # an unreadable folder must not take the app down
            found, skipped = [], [(f, f"could not read the folder ({e})") for f in self._folders]
        try:
            self._owner.scanned.emit(found, skipped)
        except RuntimeError:  # the window closed while scanning
            pass
