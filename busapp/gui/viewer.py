"""The image viewer: zoom and pan around an ultrasound image with the lesion overlay on top.

A QGraphicsView whose scene holds, bottom to top: the image, the lesion fill (an RGBA image whose
item opacity is the overlay opacity, so moving the slider never re-renders the mask), the lesion
outline (a path drawn with a cosmetic pen: 2 screen pixels wide at every zoom) and the caliper
lines of the measured axes. Scene coordinates are image pixels.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItemGroup,
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from busapp.gui.worker import LESION_RGB

ZOOM_STEP = 1.25
MAX_ZOOM = 32.0  # device pixels per image pixel
OUTLINE_WIDTH = 2.0
CALIPER_COLOUR = QColor(120, 200, 255)


class ImageViewer(QGraphicsView):
    """Fit-to-window on load; Ctrl+wheel and +/- zoom around the cursor; drag to pan."""

    hovered = Signal(int, int)  # image pixel (x, y) under the cursor
    left_image = Signal()
    zoom_changed = Signal(float)  # 1.0 = one image pixel per screen (device) pixel
    navigate = Signal(int)  # -1 previous / +1 next image (arrow keys)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QBrush(QColor(12, 13, 15)))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setMouseTracking(True)
        self.viewport().setAcceptDrops(False)  # drops are handled by the main window
        self.setAcceptDrops(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._fill_item = QGraphicsPixmapItem()
        self._fill_item.setZValue(1)
        self._outline_item = QGraphicsPathItem()
        self._outline_item.setZValue(2)
        pen = QPen(QColor(*LESION_RGB), OUTLINE_WIDTH)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self._outline_item.setPen(pen)
        self._calipers = QGraphicsItemGroup()
        self._calipers.setZValue(3)
        for item in (self._image_item, self._fill_item, self._outline_item, self._calipers):
            self._scene.addItem(item)

        self._has_image = False
        self._fit_mode = True
        self._overlay_visible = True
        self._overlay_mode = "both"
        self._opacity = 0.5
        self._show_calipers = True
        self._has_overlay = False
        self._placeholder = "Drop ultrasound images here\nor use File \u203a Open (Ctrl+O)"
        self._drop_hint = False
        self._apply_overlay_state()

    # -- content ---------------------------------------------------------------------------------
    def set_image(self, image: QImage | None, placeholder: str | None = None) -> None:
        """Show an image (fit to the window) or, with None, an empty view with a message."""
        self.clear_overlay()
        if placeholder is not None:
            self._placeholder = placeholder
        if image is None or image.isNull():
            self._image_item.setPixmap(QPixmap())
            self._has_image = False
            self._scene.setSceneRect(QRectF())
        else:
            self._image_item.setPixmap(QPixmap.fromImage(image))
            self._has_image = True
            self._scene.setSceneRect(QRectF(0, 0, image.width(), image.height()))
            self.fit()
        self.viewport().update()

    def replace_image(self, image: QImage) -> None:
        """Another frame of the same image: keep zoom and pan (a full ``set_image`` would re-fit)."""
        if not self._has_image or image.isNull() or (image.width(), image.height()) != self.image_size():
            self.set_image(image)
            return
        self.clear_overlay()
        self._image_item.setPixmap(QPixmap.fromImage(image))
        self.viewport().update()

    def has_image(self) -> bool:
        return self._has_image

    def image_size(self) -> tuple[int, int]:
        pm = self._image_item.pixmap()
        return pm.width(), pm.height()

    def set_overlay(
        self,
        fill: QImage | None,
        outline: QPainterPath | None,
        calipers: list[tuple[tuple[float, float], tuple[float, float]]] | None = None,
    ) -> None:
        self._fill_item.setPixmap(QPixmap.fromImage(fill) if fill is not None else QPixmap())
        self._outline_item.setPath(outline if outline is not None else QPainterPath())
        for child in self._calipers.childItems():
            self._calipers.removeFromGroup(child)
            self._scene.removeItem(child)
        for (x0, y0), (x1, y1) in calipers or []:
            self._add_caliper(QPointF(x0, y0), QPointF(x1, y1))
        self._has_overlay = fill is not None or (outline is not None and not outline.isEmpty())
        self._apply_overlay_state()

    def clear_overlay(self) -> None:
        self.set_overlay(None, None, None)

    def has_overlay(self) -> bool:
        return self._has_overlay

    def _add_caliper(self, a: QPointF, b: QPointF) -> None:
        pen = QPen(CALIPER_COLOUR, 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        line = QGraphicsLineItem(QLineF(a, b))
        line.setPen(pen)
        self._calipers.addToGroup(line)
        end_pen = QPen(CALIPER_COLOUR, 1.5)
        end_pen.setCosmetic(True)
        # Short ticks across the line at each end, like calipers on a scanner.
        v = QLineF(a, b)
        if v.length() > 0:
            n = v.normalVector().unitVector()
            d = QPointF(n.dx(), n.dy()) * max(3.0, v.length() * 0.04)
            for p in (a, b):
                tick = QGraphicsLineItem(QLineF(p - d, p + d))
                tick.setPen(end_pen)
                self._calipers.addToGroup(tick)

    # -- overlay appearance ----------------------------------------------------------------------
    def set_overlay_visible(self, visible: bool) -> None:
        self._overlay_visible = bool(visible)
        self._apply_overlay_state()

    def overlay_visible(self) -> bool:
        return self._overlay_visible

    def set_overlay_mode(self, mode: str) -> None:
        if mode not in ("both", "fill", "outline"):
            raise ValueError(mode)
        self._overlay_mode = mode
        self._apply_overlay_state()

    def set_overlay_opacity(self, opacity: float) -> None:
        self._opacity = min(1.0, max(0.0, float(opacity)))
        self._apply_overlay_state()

    def overlay_opacity(self) -> float:
        return self._opacity

    def set_calipers_visible(self, visible: bool) -> None:
        self._show_calipers = bool(visible)
        self._apply_overlay_state()

    def _apply_overlay_state(self) -> None:
        on = self._overlay_visible
        self._fill_item.setVisible(on and self._overlay_mode in ("both", "fill"))
        self._outline_item.setVisible(on and self._overlay_mode in ("both", "outline"))
        self._calipers.setVisible(on and self._show_calipers)
        # The slider drives the fill; the outline is fully opaque from the default 50 % up (the
        # border is what the reader checks) and never fainter than 0.35, so that "outline only" at
        # a low opacity still shows where the lesion is.
        self._fill_item.setOpacity(self._opacity)
        self._outline_item.setOpacity(max(0.35, min(1.0, self._opacity * 2.0)))
        self.viewport().update()

    # -- zoom and pan ----------------------------------------------------------------------------
    def zoom(self) -> float:
        """Device pixels per image pixel."""
        return self.transform().m11() * self.devicePixelRatioF()

    def fit(self) -> None:
        if not self._has_image:
            return
        self._fit_mode = True
        self.resetTransform()
        self.fitInView(self._image_item, Qt.AspectRatioMode.KeepAspectRatio)
        self._zoom_updated()

    def actual_size(self) -> None:
        """1:1 - one image pixel per physical screen pixel (crisp on high-DPI screens)."""
        self._set_zoom(1.0)

    def zoom_in(self) -> None:
        self._set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self._set_zoom(self.zoom() / ZOOM_STEP)

    def _min_zoom(self) -> float:
        w, h = self.image_size()
        if not w or not h:
            return 0.05
        vp = self.viewport().rect()
        fit = min(vp.width() / w, vp.height() / h) * self.devicePixelRatioF()
        return min(fit * 0.5, 1.0)

    def _set_zoom(self, z: float) -> None:
        if not self._has_image:
            return
        z = min(MAX_ZOOM, max(self._min_zoom(), z))
        current = self.zoom()
        if current <= 0:
            return
        # Around the cursor if it is over the image view, else around the centre.
        under_mouse = self.underMouse() and self.viewport().rect().contains(self.viewport().mapFromGlobal(self.cursor().pos()))
        self.setTransformationAnchor(
            QGraphicsView.ViewportAnchor.AnchorUnderMouse if under_mouse else QGraphicsView.ViewportAnchor.AnchorViewCenter
        )
        f = z / current
        self.scale(f, f)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._fit_mode = False
        self._zoom_updated()

    def _zoom_updated(self) -> None:
        # Bilinear at fit and moderate zoom; nearest once zoomed well in, to see the real pixels.
        smooth = self._fit_mode or self.zoom() < 4.0
        self._image_item.setTransformationMode(
            Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        )
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120.0
            if steps:
                self._set_zoom(self.zoom() * (ZOOM_STEP**steps))
            event.accept()
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_out()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.navigate.emit(-1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.navigate.emit(1)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        if not self._has_image:
            return
        p = self.mapToScene(event.position().toPoint())
        w, h = self.image_size()
        x, y = int(p.x()), int(p.y())
        if 0 <= p.x() < w and 0 <= p.y() < h:
            self.hovered.emit(x, y)
        else:
            self.left_image.emit()

    def leaveEvent(self, event) -> None:
        self.left_image.emit()
        super().leaveEvent(event)

    # -- drop hint and empty state ---------------------------------------------------------------
    def set_drop_hint(self, on: bool) -> None:
        self._drop_hint = on
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if self._has_image and not self._drop_hint:
            return
        painter.save()
        painter.resetTransform()  # draw in viewport coordinates
        vp = self.viewport().rect()
        if self._drop_hint:
            pen = QPen(QColor(91, 155, 213), 2, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QColor(91, 155, 213, 30))
            painter.drawRoundedRect(vp.adjusted(12, 12, -12, -12), 10, 10)
        text = "Drop to open and analyse" if self._drop_hint else self._placeholder
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.25)
        painter.setFont(f)
        painter.setPen(QColor(150, 156, 165))
        painter.drawText(vp, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
