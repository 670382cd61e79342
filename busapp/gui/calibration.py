"""Tools > Calibrate pixel size: for images without a trusted pixel size (PNG/JPEG screenshots).

The user drags a line over the scanner's depth scale (e.g. from the 0 to the 4 cm tick) and types
its length in mm. The spacing (mm per pixel, square pixels assumed) is remembered for this image
by the sha256 of its file in ``calibrations.json`` in the user's data folder, and measurements
made with it are labelled "user calibrated" everywhere (panel, report, CSV, audit log).

Entry point: ``CalibrationDialog(image, sha256, parent=None, store=None, audit=None)``; ``exec()``.
On OK it stores the calibration and emits ``calibrated(float, float)`` = (row_mm, col_mm);
``removed()`` when the user deletes the calibration. ``CalibrationStore.get(sha256)`` reads it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QLineF, QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsLineItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from busapp.core.measure import USER_CALIBRATED, CalibrationStore, spacing_from_line
from busapp.report.render import array_to_qimage

ZOOM_STEP = 1.25
MAX_ZOOM = 16.0
OPEN_FRACTION = 0.85  # of the main window (or the screen): big enough to hit the depth-scale ticks

LINE_RGB = (90, 255, 140)


class LineDrawView(QGraphicsView):
    """Shows an image; press-drag-release draws one straight line (image pixel coordinates).
    Shift snaps it vertical (depth scales are vertical)."""

    line_changed = Signal(QPointF, QPointF)

    def __init__(self, image: np.ndarray, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        pm = QPixmap.fromImage(array_to_qimage(image))
        self.scene().addPixmap(pm)
        self.setSceneRect(0, 0, pm.width(), pm.height())
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(420, 360)
        pen = QPen(QColor(*LINE_RGB), 2)
        pen.setCosmetic(True)
        self._item = QGraphicsLineItem()
        self._item.setPen(pen)
        self._item.setZValue(1)
        self.scene().addItem(self._item)
        self._start: QPointF | None = None
        self._fit = True
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def line(self) -> QLineF:
        return self._item.line()

    def set_line(self, p0: QPointF, p1: QPointF) -> None:
        self._item.setLine(QLineF(p0, p1))
        self.line_changed.emit(p0, p1)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit:
            self.fit()

    def fit(self) -> None:
        """The whole image in the view (the state the dialog opens in)."""
        self._fit = True
        self.resetTransform()
        self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self) -> float:
        return self.transform().m11()

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The wheel zooms around the cursor: ticks a few pixels apart become easy to hit."""
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        self._fit = False
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        f = ZOOM_STEP**steps
        z = self.zoom() * f
        if 0.05 <= z <= MAX_ZOOM:
            self.scale(f, f)
        event.accept()

    def keyPressEvent(self, event) -> None:
        k = event.key()
        if k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self._fit = False
            self.scale(ZOOM_STEP, ZOOM_STEP)
        elif k == Qt.Key.Key_Minus:
            self._fit = False
            self.scale(1 / ZOOM_STEP, 1 / ZOOM_STEP)
        elif k == Qt.Key.Key_F:
            self.fit()
        else:
            super().keyPressEvent(event)

    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        p = self.mapToScene(event.position().toPoint())
        r = self.sceneRect()
        return QPointF(min(max(p.x(), r.left()), r.right()), min(max(p.y(), r.top()), r.bottom()))

    def _end_point(self, event: QMouseEvent) -> QPointF:
        p = self._scene_pos(event)
        if self._start is not None and event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            p.setX(self._start.x())
        return p

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._start = self._scene_pos(event)
            self._item.setLine(QLineF(self._start, self._start))
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._start is not None:
            self._item.setLine(QLineF(self._start, self._end_point(event)))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._start is not None and event.button() == Qt.MouseButton.LeftButton:
            self.set_line(self._start, self._end_point(event))
            self._start = None
        else:
            super().mouseReleaseEvent(event)


class CalibrationDialog(QDialog):
    calibrated = Signal(float, float)  # (row_mm, col_mm) per pixel, stored for this image
    removed = Signal()

    def __init__(
        self,
        image: np.ndarray,
        sha256: str,
        parent: QWidget | None = None,
        store: CalibrationStore | None = None,
        audit: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("calibrationDialog")
        self.setWindowTitle("Calibrate pixel size")
        self.sha256 = sha256
        self.store = store or CalibrationStore()
        self.audit = audit
        self.spacing_mm: tuple[float, float] | None = None

        help_label = QLabel(
            "Drag a line along the scanner's depth scale (hold Shift to keep it vertical), from one "
            "tick mark to another, then enter the distance between them in millimetres. "
            "The mouse wheel zooms (F fits the image again). "
            "Measurements on this image will be marked \u201cuser calibrated\u201d."
        )
        help_label.setWordWrap(True)
        self.view = LineDrawView(image, self)
        self.view.line_changed.connect(self._on_line)
        self.length_spin = QDoubleSpinBox()
        self.length_spin.setRange(0.0, 500.0)
        self.length_spin.setDecimals(1)
        self.length_spin.setSuffix(" mm")
        self.length_spin.setValue(0.0)
        self.length_spin.valueChanged.connect(self._update)
        self.pixels_label = QLabel("no line drawn")
        self.result_label = QLabel("")
        form = QFormLayout()
        form.addRow("Line:", self.pixels_label)
        form.addRow("Length:", self.length_spin)
        form.addRow("Pixel size:", self.result_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.remove_button = QPushButton("Remove calibration")
        self.remove_button.clicked.connect(self.remove_calibration)
        self.buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ResetRole)

        lay = QVBoxLayout(self)
        lay.addWidget(help_label)
        lay.addWidget(self.view, 1)
        lay.addLayout(form)
        lay.addWidget(self.buttons)

        self._size_to(parent)
        existing = self.store.entry(sha256)
        if existing and existing.get("line"):
            (x0, y0), (x1, y1) = existing["line"]
            self.view.set_line(QPointF(x0, y0), QPointF(x1, y1))
            if existing.get("length_mm"):
                self.length_spin.setValue(float(existing["length_mm"]))
        self._update()

    def _size_to(self, parent: QWidget | None) -> None:
        """Open large: most of the main window, else of the screen; the image fitted into it."""
        ref = parent.window().geometry() if parent is not None else None
        if ref is None or ref.width() < 400:
            screen = self.screen()
            ref = screen.availableGeometry() if screen is not None else None
        if ref is not None:
            self.resize(max(520, int(ref.width() * OPEN_FRACTION)), max(460, int(ref.height() * OPEN_FRACTION)))

    @Slot(QPointF, QPointF)
    def _on_line(self, p0: QPointF, p1: QPointF) -> None:
        self._update()

    def line_pixels(self) -> float:
        return self.view.line().length()

    @Slot()
    def _update(self) -> None:
        px = self.line_pixels()
        self.pixels_label.setText(f"{px:.1f} pixels" if px > 0 else "no line drawn")
        line = self.view.line()
        try:
            self.spacing_mm = spacing_from_line(
                (line.x1(), line.y1()), (line.x2(), line.y2()), float(self.length_spin.value())
            )
        except ValueError as e:
            self.spacing_mm = None
            self.result_label.setText(str(e) if px > 0 and self.length_spin.value() > 0 else "-")
        else:
            self.result_label.setText(
                f"{self.spacing_mm[0]:.4f} mm per pixel ({1 / self.spacing_mm[0]:.1f} pixels per mm), {USER_CALIBRATED}"
            )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.spacing_mm is not None)
        self.remove_button.setEnabled(self.store.get(self.sha256) is not None)

    def accept(self) -> None:
        if self.spacing_mm is None:
            return
        line = self.view.line()
        self.store.set(
            self.sha256,
            self.spacing_mm,
            line=((line.x1(), line.y1()), (line.x2(), line.y2())),
            length_mm=float(self.length_spin.value()),
        )
        if self.audit is not None:
            self.audit.record(
                "calibration",
                sha256=self.sha256,
                details={"spacing_mm": round(self.spacing_mm[0], 6), "line_pixels": round(self.line_pixels(), 2)},
            )
        self.calibrated.emit(*self.spacing_mm)
        super().accept()

    @Slot()
    def remove_calibration(self) -> None:
        self.store.remove(self.sha256)
        if self.audit is not None:
            self.audit.record("calibration_removed", sha256=self.sha256)
        self.removed.emit()
        self._update()
