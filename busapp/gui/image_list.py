"""The list of opened images: thumbnail, file name and status (queued, analysing, done, error)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from busapp.gui.records import ANALYSING, DONE, ERROR, LOADING, QUEUED

__all__ = ["ANALYSING", "DONE", "ERROR", "LOADING", "QUEUED", "ImageList"]

JOB_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 3  # the second line, e.g. "suggests benign \u00b7 0.72"
THUMB_ROLE = Qt.ItemDataRole.UserRole + 4
TONE_ROLE = Qt.ItemDataRole.UserRole + 5  # a done result's dot: its risk band's tint

STATUS_TEXT = {QUEUED: "Queued", LOADING: "Opening\u2026", ANALYSING: "Analysing\u2026", DONE: "Done", ERROR: "Error"}
STATUS_COLOUR = {
    QUEUED: QColor(140, 146, 155),
    LOADING: QColor(120, 170, 225),
    ANALYSING: QColor(120, 170, 225),
    DONE: QColor(200, 204, 210),
    ERROR: QColor(232, 128, 110),
}
ROW_HEIGHT = 64
THUMB = 52


def _dot_colour(status: str, tone: object) -> QColor:
    """A done result's dot has its risk band's tint (``tone``); otherwise the status's own colour."""
    if status == DONE and isinstance(tone, QColor):
        return QColor(tone)
    return QColor(STATUS_COLOUR.get(status, STATUS_COLOUR[QUEUED]))


def _fit(thumb: QPixmap, dpr: float) -> QPixmap:
    """The thumbnail at the list's box size for this screen; scaled once (``set_thumbnail``), not per paint."""
    if abs(thumb.devicePixelRatio() - dpr) < 1e-6 and max(thumb.width(), thumb.height()) == round(THUMB * dpr):
        return thumb
    pm = thumb.scaled(QSize(THUMB, THUMB) * dpr, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.SmoothTransformation)
    pm.setDevicePixelRatio(dpr)
    return pm


class _ItemDelegate(QStyledItemDelegate):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fonts: dict[str, tuple[QFont, QFontMetrics, QFont, QFontMetrics]] = {}

    def fonts(self, base: QFont) -> tuple[QFont, QFontMetrics, QFont, QFontMetrics]:
        """Name font and metrics, detail font and metrics: made once per base font, not per row paint."""
        key = base.key()
        found = self._fonts.get(key)
        if found is None:
            name_font = QFont(base)
            name_font.setWeight(QFont.Weight.DemiBold)
            small = QFont(base)
            small.setPointSizeF(max(7.0, base.pointSizeF() * 0.92))
            found = self._fonts[key] = (name_font, QFontMetrics(name_font), small, QFontMetrics(small))
        return found

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(option.rect.width() or 220, ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(r, QColor(48, 76, 110))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(r, QColor(40, 43, 49))

        # Thumbnail, letterboxed in a dark square.
        box = QRect(r.left() + 8, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        painter.fillRect(box, QColor(8, 9, 10))
        thumb = index.data(THUMB_ROLE)
        if isinstance(thumb, QPixmap) and not thumb.isNull():
            pm = _fit(thumb, painter.device().devicePixelRatioF())
            sz = pm.deviceIndependentSize().toSize()
            painter.drawPixmap(box.left() + (THUMB - sz.width()) // 2, box.top() + (THUMB - sz.height()) // 2, pm)

        status = index.data(STATUS_ROLE) or QUEUED
        if status == ERROR and not (isinstance(thumb, QPixmap) and not thumb.isNull()):
            glyph = QFont(option.font)
            glyph.setPointSizeF(option.font.pointSizeF() * 1.8)
            glyph.setWeight(QFont.Weight.Bold)
            painter.setFont(glyph)
            painter.setPen(STATUS_COLOUR[ERROR])
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "!")
        x = box.right() + 10
        text_w = r.right() - x - 8
        name_font, fm, small, fm2 = self.fonts(option.font)
        painter.setFont(name_font)
        painter.setPen(QColor(232, 234, 237))
        name = fm.elidedText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""), Qt.TextElideMode.ElideMiddle, text_w)
        painter.drawText(QRect(x, r.top() + 12, text_w, fm.height()), Qt.AlignmentFlag.AlignLeft, name)

        detail = index.data(DETAIL_ROLE) or STATUS_TEXT.get(status, status)
        painter.setFont(small)
        # A small status dot before the second line.
        dot = _dot_colour(status, index.data(TONE_ROLE))
        cy = r.top() + 14 + fm.height() + fm2.height() // 2
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(dot)
        painter.drawEllipse(x, cy - 3, 7, 7)
        painter.setPen(dot if status in (ERROR, ANALYSING, LOADING) else QColor(165, 171, 180))
        detail = fm2.elidedText(str(detail), Qt.TextElideMode.ElideRight, text_w - 12)
        painter.drawText(QRect(x + 12, r.top() + 14 + fm.height(), text_w - 12, fm2.height()),
                         Qt.AlignmentFlag.AlignLeft, detail)
        painter.restore()


class ImageList(QListWidget):
    """One row per opened image. Rows are found by job id (each opened file gets one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageList")
        self.setItemDelegate(_ItemDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window takes drops
        self.viewport().setAcceptDrops(False)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self._rows: dict[int, QListWidgetItem] = {}

    def add_image(self, job_id: int, name: str, tooltip: str = "") -> QListWidgetItem:
        item = QListWidgetItem(name)
        item.setData(JOB_ROLE, job_id)
        item.setData(STATUS_ROLE, QUEUED)
        item.setToolTip(tooltip or name)
        self.addItem(item)
        self._rows[job_id] = item
        return item

    def item_for(self, job_id: int) -> QListWidgetItem | None:
        return self._rows.get(job_id)

    def set_status(self, job_id: int, status: str, detail: str | None = None, tone: QColor | None = None) -> None:
        """``tone``: the dot's colour for a done result (its risk band), else the status's own."""
        item = self._rows.get(job_id)
        if item is None:
            return
        item.setData(STATUS_ROLE, status)
        item.setData(DETAIL_ROLE, detail)
        item.setData(TONE_ROLE, tone)

    def dot_colour(self, job_id: int) -> QColor | None:
        """The status dot's colour as painted (tests, accessibility checks)."""
        item = self._rows.get(job_id)
        if item is None:
            return None
        return _dot_colour(item.data(STATUS_ROLE), item.data(TONE_ROLE))

    def status(self, job_id: int) -> str | None:
        item = self._rows.get(job_id)
        return None if item is None else item.data(STATUS_ROLE)

    def detail(self, job_id: int) -> str | None:
        item = self._rows.get(job_id)
        return None if item is None else (item.data(DETAIL_ROLE) or STATUS_TEXT.get(item.data(STATUS_ROLE)))

    def set_thumbnail(self, job_id: int, pixmap: QPixmap) -> None:
        item = self._rows.get(job_id)
        if item is not None and not pixmap.isNull():
            item.setData(THUMB_ROLE, _fit(pixmap, self.devicePixelRatioF()))

    def preferred_width(self, most: int = 340) -> int:
        """Width at which every row's name and second line show whole (``most`` at most)."""
        _, fm, _, fm2 = self.itemDelegate().fonts(self.font())
        need = 0
        for i in range(self.count()):
            item = self.item(i)
            detail = item.data(DETAIL_ROLE) or STATUS_TEXT.get(item.data(STATUS_ROLE), "")
            need = max(need, fm.horizontalAdvance(item.text()), fm2.horizontalAdvance(str(detail)) + 12)
        frame = self.width() - self.viewport().width()
        return min(most, 8 + THUMB + 10 + need + 8 + frame + self.verticalScrollBar().sizeHint().width())

    def current_job(self) -> int | None:
        item = self.currentItem()
        return None if item is None else int(item.data(JOB_ROLE))

    def select_job(self, job_id: int) -> None:
        item = self._rows.get(job_id)
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def step(self, delta: int) -> None:
        """Move the selection by ``delta`` rows (clamped)."""
        if self.count() == 0:
            return
        row = self.currentRow()
        row = 0 if row < 0 else min(self.count() - 1, max(0, row + delta))
        self.setCurrentRow(row)

    def remove_all(self) -> list[int]:
        ids = list(self._rows)
        self._rows.clear()
        self.clear()
        return ids

    def job_ids(self) -> list[int]:
        return [int(self.item(i).data(JOB_ROLE)) for i in range(self.count())]
