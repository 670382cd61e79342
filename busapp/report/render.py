"""The image with the lesion overlay and calipers as a QImage, and PNG exports of mask and overlay.

Needs a QGuiApplication (fonts), but no window: the PDF report, File > Export overlay and the
tests all use ``render_overlay``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QFontMetricsF, QImage, QPainter, QPainterPath, QPen

from busapp.core import wording
from busapp.core.atomic import save_mask_png, write_bytes_atomic
from busapp.core.measure import LesionMeasurements

LESION_RGB = (255, 200, 61)  # same warm yellow as the viewer's overlay
CALIPER_RGB = (120, 200, 255)  # same light blue as the viewer's calipers
READER_CALIPER_RGB = (150, 230, 150)  # the reader's own calipers: green as in the viewer, apart from D1/D2


def tick_labels(xs: list[float], texts: list[str], fm: QFontMetrics | QFontMetricsF, left: float, right: float,
                top: float) -> list[tuple[QRectF, str]]:
    """Where each tick's label goes: centred under its tick, the two pushed apart when they would
    overlap (the card's band edges can be 0.03 apart: "0.06" and "0.09" were printed over each
    other), and the lower one left out when there is no room; the band meaning says it in words."""
    out: list[tuple[QRectF, str]] = []
    for x, text in zip(xs, texts, strict=True):
        w = fm.horizontalAdvance(text) + 4
        rect = QRectF(max(left, min(right - w, x - w / 2)), top, w, fm.height())
        if out:
            prev = out[-1][0]
            overlap = prev.right() + 3 - rect.left()
            if overlap > 0:
                floor = out[-2][0].right() + 3 if len(out) > 1 else left
                shifted = prev.translated(-min(overlap / 2 + max(0.0, overlap / 2 - (right - rect.right())),
                                               prev.left() - floor), 0)
                rect = rect.translated(max(0.0, shifted.right() + 3 - rect.left()), 0)
                if rect.right() > right:
                    out.pop()  # no room for both: the higher edge (the threshold) keeps its label
                    rect = QRectF(max(left, min(right - w, x - w / 2)), top, w, fm.height())
                else:
                    out[-1] = (shifted, out[-1][1])
        out.append((rect, text))
    return out


def array_to_qimage(a: np.ndarray) -> QImage:
    """uint8 HxW grey, HxWx3 RGB or HxWx4 RGBA -> a QImage owning a copy of the pixels."""
    a = np.ascontiguousarray(a)
    if a.dtype != np.uint8:
        from busapp.core.preprocess import to_grey_u8

        a = to_grey_u8(a)
    h, w = a.shape[:2]
    fmt = {2: QImage.Format.Format_Grayscale8}.get(a.ndim) or {
        3: QImage.Format.Format_RGB888,
        4: QImage.Format.Format_RGBA8888,
    }.get(a.shape[2])
    if fmt is None:
        raise ValueError(f"cannot show an array of shape {a.shape}")
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


def mask_outline_path(mask: np.ndarray) -> QPainterPath:
    """Boundary of a bool mask along pixel edges (the union of its row runs), holes included."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = np.asarray(mask, bool)
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.WindingFill)
    for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True):
        path.addRect(QRectF(s, r, e - s, 1))
    return path.simplified()


def draw_calipers(
    p: QPainter, m: LesionMeasurements, scale: float = 1.0, line_width: float = 2.0, labels: bool = True
) -> None:
    """Draw both caliper lines (dashed, with end ticks) and their lengths; coordinates are image pixels."""
    draw_lines(p, [(f"D1 {wording.length(m.longest_diameter, m.unit)}", m.longest_axis),
                   (f"D2 {wording.length(m.perpendicular_diameter, m.unit)}", m.perpendicular_axis)],
               QColor(*CALIPER_RGB), scale, line_width, labels)


def draw_lines(p: QPainter, lines: Sequence[tuple[str, Any]], colour: QColor, scale: float = 1.0,
               line_width: float = 2.0, labels: bool = True) -> None:
    """Measured lines (text, ((x0, y0), (x1, y1)) in image pixels): dashed, end ticks, the text."""
    font = QFont()
    font.setPixelSize(max(10, round(14 / scale)))
    font.setBold(True)
    p.setFont(font)
    for text, seg in lines:
        a, b = QPointF(*seg[0]), QPointF(*seg[1])
        pen = QPen(colour, line_width / scale, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawLine(a, b)
        v = QLineF(a, b)
        if v.length() > 0:
            n = v.normalVector().unitVector()
            d = QPointF(n.dx(), n.dy()) * max(4.0 / scale, v.length() * 0.04)
            p.setPen(QPen(colour, line_width / scale))
            for q in (a, b):
                p.drawLine(q - d, q + d)
        if labels:
            # Label beside the end point that is further right (away from the lesion centre line),
            # moved inside the image where it would be cut at an edge (issue 25, defect 2).
            end = b if b.x() >= a.x() else a
            dev = p.device()
            bounds = QRectF(0, 0, dev.width(), dev.height()) if dev is not None else None
            at = label_origin(end, QFontMetricsF(font).boundingRect(text), 6 / scale, bounds)
            p.setPen(QPen(QColor(0, 0, 0), 1))
            for dx, dy in ((1, 1), (-1, -1), (1, -1), (-1, 1)):  # dark halo: readable on any grey
                p.drawText(at + QPointF(dx / scale, dy / scale), text)
            p.setPen(QPen(colour, 1))
            p.drawText(at, text)


def label_origin(end: QPointF, text_rect: QRectF, gap: float, bounds: QRectF | None) -> QPointF:
    """Baseline origin of a caliper label: right of ``end``; left of it where the right would run
    past ``bounds`` (the image), and kept inside vertically. ``text_rect`` is relative to the origin."""
    x, y = end.x() + gap, end.y()
    if bounds is None:
        return QPointF(x, y)
    if x + text_rect.right() > bounds.right():
        x = end.x() - gap - text_rect.width()
    x = max(bounds.left() - text_rect.left(), min(x, bounds.right() - text_rect.right()))
    y = max(bounds.top() - text_rect.top(), min(y, bounds.bottom() - text_rect.bottom()))
    return QPointF(x, y)


def render_overlay(
    image: np.ndarray,
    mask: np.ndarray | None,
    measurements: LesionMeasurements | None = None,
    *,
    fill_opacity: float = 0.3,
    outline: bool = True,
    calipers: bool = True,
    labels: bool = True,
    note: str | None = None,
    reader_lines: Sequence[tuple[str, Any]] = (),
) -> QImage:
    """The image (its own size, RGB) with the lesion fill, outline and (optionally) calipers;
    ``note`` (e.g. "Outline edited by reader") is written in the top-left corner; ``reader_lines``
    (text, line) are the reader's own calipers, drawn in their own colour with ``calipers``."""
    base = array_to_qimage(image).convertToFormat(QImage.Format.Format_RGB32)
    if mask is None:
        return base
    mask = np.asarray(mask, bool)
    if mask.shape != (base.height(), base.width()):
        raise ValueError(f"mask {mask.shape} does not match the image {(base.height(), base.width())}")
    # Line widths in image pixels, so that the overlay reads the same on small and large images.
    scale = min(1.0, 600.0 / max(base.width(), base.height()))
    p = QPainter(base)
    try:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if mask.any():
            rgba = np.zeros((*mask.shape, 4), np.uint8)
            rgba[mask] = (*LESION_RGB, 255)
            p.setOpacity(fill_opacity)
            p.drawImage(0, 0, array_to_qimage(rgba))
            p.setOpacity(1.0)
            if outline:
                p.setPen(QPen(QColor(*LESION_RGB), 2.0 / scale))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawPath(mask_outline_path(mask))
        if calipers and measurements is not None:
            draw_calipers(p, measurements, scale, labels=labels)
        if calipers and reader_lines:
            draw_lines(p, reader_lines, QColor(*READER_CALIPER_RGB), scale, labels=labels)
        if note:
            draw_note(p, note, scale)
    finally:
        p.end()
    return base


def draw_note(p: QPainter, text: str, scale: float = 1.0) -> None:
    """A short note in the top-left corner, light on a dark box: readable on any image."""
    font = QFont()
    font.setPixelSize(max(10, round(13 / scale)))
    font.setBold(True)
    p.setFont(font)
    r = QFontMetricsF(font).boundingRect(text)
    pad = 4 / scale
    box = QRectF(6 / scale, 6 / scale, r.width() + 2 * pad, r.height() + 2 * pad)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(20, 22, 26, 210))
    p.drawRect(box)
    p.setPen(QColor(*LESION_RGB))
    p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)


def qimage_png_bytes(img: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not img.save(buf, "PNG"):
        raise OSError("the image could not be encoded as PNG")
    buf.close()
    return bytes(data.data())


def export_overlay_png(
    path: Path,
    image: np.ndarray,
    mask: np.ndarray | None,
    measurements: LesionMeasurements | None = None,
    calipers: bool = True,
    note: str | None = None,
    reader_lines: Sequence[tuple[str, Any]] = (),
) -> None:
    """File > Export overlay: the image with the overlay (and calipers), full resolution, atomically."""
    img = render_overlay(image, mask, measurements, calipers=calipers, note=note, reader_lines=reader_lines)
    write_bytes_atomic(Path(path), qimage_png_bytes(img))


def export_mask_png(path: Path, mask: np.ndarray) -> None:
    """File > Export mask: the predicted mask as an 8-bit {0, 255} PNG the size of the image."""
    save_mask_png(Path(path), mask)
