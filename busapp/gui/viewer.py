"""The image viewer: zoom and pan around an ultrasound image with the lesion overlay on top.

A QGraphicsView whose scene holds, bottom to top: the image, the lesion fill (an RGBA image whose
item opacity is the overlay opacity, so moving the slider never re-renders the mask), the lesion
outline (a path drawn with a cosmetic pen: 2 screen pixels wide at every zoom) and the caliper
lines of the measured axes. Scene coordinates are image pixels.

Outline editing (issue 25): with an edit tool set (``set_edit_tool``: "brush", "eraser",
"polygon") and a ``MaskEditor`` attached, the left button paints, erases or places polygon
vertices (a drag with the polygon tool is a freehand lasso; Shift with it clears instead of
filling); [ and ] change the brush size; the middle button pans. The viewer redraws the overlay
from the editor's mask as the pointer moves and emits ``mask_edited`` when a stroke or polygon ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    QGraphicsEllipseItem,
    QGraphicsItemGroup,
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from busapp.gui.worker import LESION_RGB, mask_fill_image
from busapp.report.render import mask_outline_path

if TYPE_CHECKING:
    from busapp.gui.mask_edit import MaskEditor

ZOOM_STEP = 1.25
MAX_ZOOM = 32.0  # device pixels per image pixel
OUTLINE_WIDTH = 2.0
CALIPER_COLOUR = QColor(120, 200, 255)
EDIT_TOOLS = ("brush", "eraser", "polygon")
TOOLS = (*EDIT_TOOLS, "caliper")  # the caliper measures; it does not edit the outline
MANUAL_CALIPER_COLOUR = QColor(150, 230, 150)  # the reader's own lines: green, apart from D1/D2 in blue
BRUSH_STEP = 1.25  # [ and ] scale the brush radius by this
MIN_BRUSH, MAX_BRUSH = 1.0, 200.0  # image pixels
LASSO_MIN_SCREEN_PX = 6.0  # a drag shorter than this is a click (a polygon vertex)


def outline_opacity(fill_opacity: float) -> float:
    """Outline and calipers from the opacity slider: fully opaque from the default 50 % up (the
    border is what the reader checks), never fainter than 0.35 while the overlay is on at all (so
    "outline only" at a low setting still shows the lesion), and nothing at 0 %."""
    if fill_opacity <= 0.0:
        return 0.0
    return max(0.35, min(1.0, fill_opacity * 2.0))


class ImageViewer(QGraphicsView):
    """Fit-to-window on load; Ctrl+wheel and +/- zoom around the cursor; drag to pan."""

    hovered = Signal(int, int)  # image pixel (x, y) under the cursor
    left_image = Signal()
    zoom_changed = Signal(float)  # 1.0 = one image pixel per screen (device) pixel
    navigate = Signal(int)  # -1 previous / +1 next image (arrow keys)
    mask_edited = Signal()  # a brush stroke or polygon changed the attached editor's mask
    brush_changed = Signal(float)  # brush radius, image pixels
    edit_tool_changed = Signal(str)  # "" when no tool
    caliper_drawn = Signal(float, float, float, float)  # a manual caliper line x0, y0, x1, y1 (image px)

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
        # Outline editing
        self._editor: MaskEditor | None = None
        self._tool = ""
        self._brush_radius = 8.0
        self._stroke_last: QPointF | None = None
        self._poly: list[QPointF] = []
        self._press_pos: QPointF | None = None  # viewport position of a polygon-tool press
        self._lasso = False
        self._pan_from: QPointF | None = None
        self._edited_badge = ""
        self._brush_item = QGraphicsEllipseItem()
        self._brush_item.setZValue(5)
        bpen = QPen(QColor(255, 255, 255, 220), 1.0)
        bpen.setCosmetic(True)
        self._brush_item.setPen(bpen)
        self._brush_item.setVisible(False)
        self._poly_item = QGraphicsPathItem()
        self._poly_item.setZValue(4)
        ppen = QPen(QColor(255, 255, 255, 230), 1.5, Qt.PenStyle.DashLine)
        ppen.setCosmetic(True)
        self._poly_item.setPen(ppen)
        self._manual = QGraphicsItemGroup()  # the reader's caliper lines and labels
        self._manual.setZValue(6)
        self._caliper_from: QPointF | None = None
        self._caliper_item = QGraphicsLineItem()
        self._caliper_item.setZValue(7)
        cpen = QPen(MANUAL_CALIPER_COLOUR, 1.5)
        cpen.setCosmetic(True)
        self._caliper_item.setPen(cpen)
        self._caliper_item.setVisible(False)
        for item in (self._brush_item, self._poly_item, self._manual, self._caliper_item):
            self._scene.addItem(item)
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
            self.zoom_changed.emit(0.0)  # no image, no zoom (the status bar clears it)
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
        self._fill_item.setOpacity(self._opacity)
        line = outline_opacity(self._opacity)
        self._outline_item.setOpacity(line)
        self._calipers.setOpacity(line)
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
        if key == Qt.Key.Key_BracketLeft:
            self.set_brush_radius(self._brush_radius / BRUSH_STEP)
        elif key == Qt.Key.Key_BracketRight:
            self.set_brush_radius(self._brush_radius * BRUSH_STEP)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._tool == "polygon" and self._poly:
            self.finish_polygon(bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        elif key == Qt.Key.Key_Escape and self._tool:
            if self._caliper_from is not None:
                self._caliper_from = None
                self._caliper_item.setVisible(False)
            elif self._poly:
                self.cancel_polygon()
            else:
                self.set_edit_tool("")
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
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

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._tool == "caliper" and self._has_image and event.button() == Qt.MouseButton.LeftButton:
            self._caliper_from = self._scene_pos(event)
            self._caliper_item.setLine(QLineF(self._caliper_from, self._caliper_from))
            self._caliper_item.setVisible(True)
            event.accept()
            return
        if not self._editing():
            super().mousePressEvent(event)
            return
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            p = self._scene_pos(event)
            if self._tool == "polygon":
                self._press_pos = event.position()
                self._lasso = False
                self._poly.append(p)
                self._update_poly_item(p)
            else:
                self._editor.begin_stroke()
                self._stroke_last = p
                self._paint_to(p)
        elif event.button() == Qt.MouseButton.RightButton and self._tool == "polygon" and self._poly:
            self.finish_polygon(bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._tool == "caliper" and self._caliper_from is not None and event.button() == Qt.MouseButton.LeftButton:
            a, b = self._caliper_from, self._clamp(self._scene_pos(event))
            a = self._clamp(a)
            self._caliper_from = None
            self._caliper_item.setVisible(False)
            self.caliper_drawn.emit(a.x(), a.y(), b.x(), b.y())
            event.accept()
            return
        if not self._editing():
            super().mouseReleaseEvent(event)
            return
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            self._update_edit_cursor()
        elif event.button() == Qt.MouseButton.LeftButton:
            if self._tool == "polygon":
                self._press_pos = None
                if self._lasso:  # a freehand lasso closes when the button is released
                    self.finish_polygon(bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
            elif self._stroke_last is not None:
                self._stroke_last = None
                if self._editor.end_stroke():
                    self.show_mask(self._editor.mask)
                    self.mask_edited.emit()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._editing() and self._tool == "polygon":
            if len(self._poly) >= 3:
                self.finish_polygon(bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
            event.accept()
            return
        if self._editing():  # a fast second click of the brush paints like the first
            self.mousePressEvent(event)
            return
        super().mouseDoubleClickEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._caliper_from is not None:
            self._caliper_item.setLine(QLineF(self._caliper_from, self._clamp(self._scene_pos(event))))
        elif self._editing():
            self._edit_move(event)
        else:
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
        self._brush_item.setVisible(False)
        super().leaveEvent(event)

    # -- outline editing -------------------------------------------------------------------------
    def set_mask_editor(self, editor: MaskEditor | None) -> None:
        """The mask the edit tools change (None: nothing to edit, the tools do nothing)."""
        self.cancel_polygon()
        if self._editor is not None and self._editor.in_stroke:
            self._editor.end_stroke()
        self._editor = editor
        self._stroke_last = None

    def mask_editor(self) -> MaskEditor | None:
        return self._editor

    def set_edit_tool(self, tool: str) -> None:
        """"brush", "eraser", "polygon", or "" for none (drag pans again)."""
        if tool and tool not in TOOLS:
            raise ValueError(tool)
        if tool == self._tool:
            return
        self.cancel_polygon()
        self._tool = tool
        self.setDragMode(QGraphicsView.DragMode.NoDrag if tool else QGraphicsView.DragMode.ScrollHandDrag)
        self._update_edit_cursor()
        self.edit_tool_changed.emit(tool)

    def edit_tool(self) -> str:
        return self._tool

    def set_brush_radius(self, radius: float) -> None:
        r = min(MAX_BRUSH, max(MIN_BRUSH, float(radius)))
        if r == self._brush_radius:
            return
        self._brush_radius = r
        if self._brush_item.isVisible():
            c = self._brush_item.rect().center()
            self._brush_item.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))
        self.brush_changed.emit(r)

    def brush_radius(self) -> float:
        return self._brush_radius

    def set_edited_badge(self, text: str) -> None:
        """A short note drawn in the view's corner (e.g. "Outline edited by reader")."""
        self._edited_badge = text
        self.viewport().update()

    def show_mask(self, mask, calipers: list | None = None) -> None:
        """Overlay from a bool mask (the editor's), keeping or replacing the calipers."""
        empty = not mask.any()
        fill = None if empty else mask_fill_image(mask)
        outline = QPainterPath() if empty else mask_outline_path(mask)
        if calipers is None:
            self._fill_item.setPixmap(QPixmap.fromImage(fill) if fill is not None else QPixmap())
            self._outline_item.setPath(outline)
            self._has_overlay = not empty
            self._apply_overlay_state()
        else:
            self.set_overlay(fill, outline, calipers)

    def finish_polygon(self, clear: bool = False) -> bool:
        """Close the polygon being drawn and fill it (``clear``: remove it); True if the mask changed."""
        pts = [(p.x(), p.y()) for p in self._poly]
        self.cancel_polygon()
        if self._editor is None or len(pts) < 3:
            return False
        changed = self._editor.fill_polygon(pts, value=not clear)
        if changed:
            self.show_mask(self._editor.mask)
            self.mask_edited.emit()
        return changed

    def cancel_polygon(self) -> None:
        self._poly = []
        self._lasso = False
        self._press_pos = None
        self._poly_item.setPath(QPainterPath())

    def set_manual_calipers(self, lines: list) -> None:
        """The reader's lines: [(((x0, y0), (x1, y1)), label)], image pixels, always shown."""
        for child in self._manual.childItems():
            self._manual.removeFromGroup(child)
            self._scene.removeItem(child)
        pen = QPen(MANUAL_CALIPER_COLOUR, 1.5)
        pen.setCosmetic(True)
        for ((x0, y0), (x1, y1)), label in lines:
            a, b = QPointF(x0, y0), QPointF(x1, y1)
            line = QGraphicsLineItem(QLineF(a, b))
            line.setPen(pen)
            self._manual.addToGroup(line)
            v = QLineF(a, b)
            if v.length() > 0:
                n = v.normalVector().unitVector()
                d = QPointF(n.dx(), n.dy()) * max(3.0, v.length() * 0.04)
                for q in (a, b):
                    tick = QGraphicsLineItem(QLineF(q - d, q + d))
                    tick.setPen(pen)
                    self._manual.addToGroup(tick)
            text = QGraphicsSimpleTextItem(label)
            text.setBrush(MANUAL_CALIPER_COLOUR)
            text.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            end = b if b.x() >= a.x() else a
            text.setPos(end + QPointF(3, 3))
            self._manual.addToGroup(text)
        self.viewport().update()

    def manual_caliper_count(self) -> int:
        return sum(isinstance(c, QGraphicsSimpleTextItem) for c in self._manual.childItems())

    def _clamp(self, p: QPointF) -> QPointF:
        w, h = self.image_size()
        return QPointF(min(float(w), max(0.0, p.x())), min(float(h), max(0.0, p.y())))

    def polygon_points(self) -> list[tuple[float, float]]:
        return [(p.x(), p.y()) for p in self._poly]

    def _editing(self) -> bool:
        return bool(self._tool) and self._editor is not None and self._has_image

    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _paint_to(self, p: QPointF) -> None:
        last = self._stroke_last or p
        self._editor.paint(last.x(), last.y(), p.x(), p.y(), self._brush_radius, self._tool == "brush")
        self._stroke_last = p
        self.show_mask(self._editor.mask)

    def _edit_move(self, event: QMouseEvent) -> None:
        p = self._scene_pos(event)
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            return
        if self._tool in ("brush", "eraser"):
            r = self._brush_radius
            self._brush_item.setRect(QRectF(p.x() - r, p.y() - r, 2 * r, 2 * r))
            self._brush_item.setVisible(True)
            if self._stroke_last is not None and event.buttons() & Qt.MouseButton.LeftButton:
                self._paint_to(p)
        elif self._tool == "polygon":
            if self._press_pos is not None and event.buttons() & Qt.MouseButton.LeftButton:
                moved = event.position() - self._press_pos
                if self._lasso or abs(moved.x()) + abs(moved.y()) >= LASSO_MIN_SCREEN_PX:
                    self._lasso = True
                    self._poly.append(p)
            self._update_poly_item(p)

    def _update_poly_item(self, cursor: QPointF | None = None) -> None:
        path = QPainterPath()
        if self._poly:
            path.moveTo(self._poly[0])
            for q in self._poly[1:]:
                path.lineTo(q)
            if cursor is not None and not self._lasso:
                path.lineTo(cursor)
        self._poly_item.setPath(path)

    def _update_edit_cursor(self) -> None:
        vp = self.viewport()
        if self._tool in ("brush", "eraser"):
            vp.setCursor(Qt.CursorShape.BlankCursor if self._editor is not None else Qt.CursorShape.ForbiddenCursor)
        elif self._tool in ("polygon", "caliper"):
            vp.setCursor(Qt.CursorShape.CrossCursor)
        else:
            vp.unsetCursor()
            self._brush_item.setVisible(False)
        if self._tool not in ("brush", "eraser"):
            self._brush_item.setVisible(False)

    # -- drop hint and empty state ---------------------------------------------------------------
    def set_drop_hint(self, on: bool) -> None:
        self._drop_hint = on
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if self._has_image and not self._drop_hint:
            if self._edited_badge and self._has_image:
                self._draw_badge(painter)
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

    def _draw_badge(self, painter: QPainter) -> None:
        painter.save()
        painter.resetTransform()
        f = QFont(self.font())
        f.setBold(True)
        painter.setFont(f)
        fm = painter.fontMetrics()
        w = fm.horizontalAdvance(self._edited_badge) + 16
        box = QRectF(10, 10, w, fm.height() + 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 22, 26, 200))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(*LESION_RGB))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self._edited_badge)
        painter.restore()
