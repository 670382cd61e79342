"""Issue 25's defects list, each with a test that failed before its fix."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QApplication, QMenu, QPushButton


def _array(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, : img.width(), :3].astype(int)


def _text_brightness(a: np.ndarray) -> float:
    """How bright the text is: the mean of the brightest 2 % of pixels (the glyphs on a dark theme)."""
    lum = a.mean(axis=2).ravel()
    return float(np.sort(lum)[-max(1, lum.size // 50):].mean())


def test_1_disabled_menu_items_and_buttons_look_disabled(qtbot) -> None:
    menu = QMenu()
    qtbot.addWidget(menu)
    on, off = QAction("Export report", menu), QAction("Export report", menu)
    off.setEnabled(False)
    menu.addAction(on)
    menu.addAction(off)
    menu.popup(menu.pos())
    qtbot.waitExposed(menu)
    QApplication.processEvents()
    img = _array(menu.grab().toImage())
    g_on, g_off = menu.actionGeometry(on), menu.actionGeometry(off)
    r = menu.devicePixelRatioF()
    row = lambda g: img[int(g.top() * r): int(g.bottom() * r), int(g.left() * r): int(g.right() * r)]  # noqa: E731
    assert _text_brightness(row(g_off)) < _text_brightness(row(g_on)) - 40
    menu.close()
    for name in ("segment", ""):
        a, b = QPushButton("Brush"), QPushButton("Brush")
        for btn in (a, b):
            btn.setObjectName(name)
            qtbot.addWidget(btn)
            btn.resize(100, 28)
        b.setEnabled(False)
        assert _text_brightness(_array(b.grab().toImage())) < _text_brightness(_array(a.grab().toImage())) - 40
