"""Render busapp.svg to the 256 px busapp.png (run after editing the SVG):

    QT_QPA_PLATFORM=offscreen .venv/bin/python resources/icons/render_png.py
"""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

here = Path(__file__).resolve().parent
app = QGuiApplication([])
img = QImage(256, 256, QImage.Format.Format_ARGB32_Premultiplied)
img.fill(Qt.GlobalColor.transparent)
p = QPainter(img)
p.setRenderHint(QPainter.RenderHint.Antialiasing)
QSvgRenderer(str(here / "busapp.svg")).render(p)
p.end()
img.save(str(here / "busapp.png"))
print("wrote", here / "busapp.png")
