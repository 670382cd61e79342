"""Helpers for the GUI tests (imported by the test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QWidget

from busapp.gui.main_window import MainWindow
from busapp.gui.settings import AppSettings

RESULT_TIMEOUT_MS = 60_000  # the CPU is shared with training jobs: be generous


def make_settings(path: Path) -> AppSettings:
    return AppSettings(QSettings(str(path), QSettings.Format.IniFormat))


def drop(target: QWidget, paths: list[Path]) -> bool:
    """Simulate dragging local files onto ``target`` and dropping them; True if the drop was accepted."""
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = target.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    ev = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, ev)
    return ev.isAccepted()


def wait_all_done(qtbot,
                   window: MainWindow, n: int | None = None, timeout: int = RESULT_TIMEOUT_MS) -> None:
    def ok() -> bool:
        recs = window.records()
        return bool(recs) and (n is None or len(recs) == n) and window.is_idle()

    qtbot.waitUntil(ok, timeout=timeout)


def copies(samples: list[Path], folder: Path, n: int) -> list[Path]:
    """``n`` distinct files (the app opens each path once) cycling through the samples."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = samples[i % len(samples)]
        dst = folder / f"{i:02d}_{src.name}"
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def make_cine(sample: Path, path: Path, n: int = 4, patient_name: str = "") -> Path:
    """A multi-frame (cine) DICOM built from a real sample: each frame shifted a little, like a sweep."""
    import numpy as np

    from busapp.core.dicomgen import make_dataset, write_dicom

    img = QImage(str(sample)).convertToFormat(QImage.Format.Format_Grayscale8)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width()]
    frames = np.stack([np.roll(a, 12 * i, axis=1) for i in range(n)])
    return write_dicom(make_dataset(frames, multi_frame=True, patient_name=patient_name), path)


def render(widget: QWidget) -> QImage:
    """What the widget shows now, as an image (offscreen rendering, no screen needed)."""
    QApplication.processEvents()
    return widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def image_bytes(img: QImage) -> bytes:
    return bytes(img.constBits())
