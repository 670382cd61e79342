"""One-page PDF report for one image, drawn with Qt's own PDF writer (QPdfWriter + QPainter).

Contents: the decision-support notice, file name and sha256, date and time, the image and the
image with the lesion outline and calipers, the malignancy assessment (p(malignant) in the model
card's bands, ``core.risk``) and the input check's warnings, the class probabilities, the
measurements (with units and where the pixel size came from), and the model's name, version and
test metrics from its model card.

``report_text`` gives the same content as plain lines (what the PDF must say; tests compare the
two). ``paint_report`` draws onto any QPaintDevice, so the page can also be previewed as a QImage.
Needs a QGuiApplication, no window. The PDF is written atomically.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
)

from busapp import DISCLAIMER, __version__
from busapp.core import wording
from busapp.core.atomic import write_bytes_atomic
from busapp.core.card_format import report_metric_rows
from busapp.core.hashing import sha256_file
from busapp.core.input_check import InputWarning
from busapp.core.measure import LesionMeasurements, format_measurements
from busapp.core.risk import RiskAssessment, assess, band_tone, class_summary
from busapp.report.render import array_to_qimage, render_overlay, tick_labels

DPI = 300
PAGE_MM = (210.0, 297.0)  # A4
MARGIN_MM = 14.0


@dataclass(frozen=True)
class ReportData:
    file_name: str
    sha256: str
    generated: _dt.datetime
    image: np.ndarray
    mask: np.ndarray | None
    frame_index: int
    n_frames: int
    label: str
    probabilities: dict[str, float]
    low_confidence: bool
    headline: str
    measurements: LesionMeasurements | None
    spacing_note: str
    model_name: str
    model_version: str
    card: dict[str, Any]
    # The reader's part (issue 25), kept apart from the model's output: their assessment
    # (busapp.core.reader.ReaderAssessment) and whether the outline shown is the reader's edit.
    reader: Any = None
    outline_edited: bool = False
    identity: Any = None  # busapp.core.patient_identity.PatientIdentity (DICOM): shown, never logged
    risk: RiskAssessment | None = None
    input_warnings: tuple[InputWarning, ...] = ()
    # core.calipers.CaliperItem: the outline's width and depth, then the reader's own calipers
    calipers: tuple[Any, ...] = ()

    def caliper_rows(self) -> list[tuple[str, str]]:
        return [(it.label + (" (reader)" if it.by_reader else ""), it.length.text()) for it in self.calipers]

    def reader_lines(self) -> list[tuple[str, Any]]:
        from busapp.core.calipers import reader_lines

        return reader_lines(self.calipers)


def build_report_data(
    loaded: Any,
    prediction: Any,
    measurements: LesionMeasurements | None,
    card: dict[str, Any],
    frame_index: int = 0,
    sha256: str | None = None,
    generated: _dt.datetime | None = None,
    reader: Any = None,
    outline_edited: bool = False,
    identity: Any = None,
    risk: RiskAssessment | None = None,
    input_warnings: tuple[InputWarning, ...] | None = None,
    calipers: tuple[Any, ...] = (),
) -> ReportData:
    """The report's content. ``risk`` and ``input_warnings`` default to what ``core.risk`` and
    ``core.input_check`` give for this prediction and frame (the functions the app uses)."""
    m = measurements
    if m is None:
        note = getattr(prediction, "outline_note", None) or "no lesion outlined by the model"
    else:
        note = wording.pixel_size_note(m)
    return ReportData(
        file_name=Path(loaded.path).name,
        sha256=sha256 or sha256_file(Path(loaded.path)),
        generated=(generated or _dt.datetime.now()).astimezone(),
        image=loaded.frame(frame_index),
        mask=getattr(prediction, "mask", None),
        frame_index=frame_index,
        n_frames=loaded.n_frames,
        label=prediction.label,
        probabilities=dict(prediction.probabilities),
        low_confidence=bool(prediction.low_confidence),
        headline=class_summary(prediction),  # the top class in words; the risk headline leads
        measurements=m,
        spacing_note=note,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        card=card,
        reader=reader,
        outline_edited=bool(outline_edited or getattr(reader, "outline_edited", False)),
        identity=identity if identity is not None and not identity.empty else None,
        risk=risk or assess(prediction, card=card),
        input_warnings=_warnings(loaded, prediction, card, frame_index) if input_warnings is None
        else tuple(input_warnings),
        calipers=tuple(calipers),
    )


def _warnings(loaded: Any, prediction: Any, card: dict[str, Any], frame_index: int) -> tuple[InputWarning, ...]:
    from busapp.core import input_check

    return input_check.check(loaded.frame(frame_index), prediction, params=input_check.load_params(card))


def risk_lines(r: RiskAssessment | None, warnings: tuple[InputWarning, ...] = ()) -> list[str]:
    """The assessment in words: headline, the band's meaning (or why there is none), warnings."""
    if r is None:
        return []
    lines = [r.headline]
    if r.validated:
        lines.append(f"{r.band}: {r.band_meaning}" if r.band_meaning else f"Band: {r.band}")
        if r.threshold_source == "site":
            lines.append(f"Suspicious-for-malignancy threshold {r.threshold:.2f}: {r.site_note} "
                         f"(model card: {r.card_threshold:.2f})")
        else:
            lines.append(f"Suspicious-for-malignancy threshold {r.threshold:.2f} (from the model card)")
    else:
        lines.append(f"No validated threshold: {r.note}.")
    lines += [f"Input check: {w.message}" for w in warnings]
    return lines


def _metric_rows(card: Any) -> list[tuple[str, str]]:
    """Test value, 95% interval and, where the card has it, the cross-validation figure (the one
    formatter of card figures, shared with About and the README)."""
    return report_metric_rows(card)


READER_HEADING = "Reader's assessment"
OUTLINE_EDITED_NOTE = "Outline edited by reader: the outline and measurements are the reader's, not the model's."


def identity_lines(d: ReportData) -> list[str]:
    """Patient and study identity (DICOM) for the header; none for files without it."""
    return [f"{k}: {v}" for k, v in d.identity.rows()] if d.identity is not None else []


def paint_identity_header(pen: _Pen, d: ReportData) -> None:
    """Whose image this is, boxed under the notice, in two columns (DICOM files only)."""
    if d.identity is None:
        return
    p, mm = pen.p, pen.mm
    rows = d.identity.rows()
    top = pen.y
    x0, full = pen.rect.left(), pen.rect.width()
    pen.y += mm(1.5)
    pen.rect = QRectF(x0 + mm(3), pen.rect.top(), full / 2 - mm(3), pen.rect.height())
    pen.table(rows[:3], key_w_mm=25, pt=9)
    left_end = pen.y
    pen.y = top + mm(1.5)
    pen.rect = QRectF(x0 + full / 2, pen.rect.top(), full / 2 - mm(3), pen.rect.height())
    pen.table(rows[3:], key_w_mm=25, pt=9)
    pen.rect = QRectF(x0, pen.rect.top(), full, pen.rect.height())
    pen.y = max(pen.y, left_end) + mm(1.5)
    p.setPen(QPen(QColor(120, 120, 120), mm(0.3)))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(x0, top, full, pen.y - top), mm(1.2), mm(1.2))
    pen.y += mm(1)


def _two_columns(pen: _Pen, left: list[tuple[str, str]], right: list[tuple[str, str]],
                 key_w_mm: tuple[float, float], pt: float | None = None, split: float = 0.5) -> None:
    """Two key/value tables side by side (the page must stay one page), the left one ``split`` of
    the width; the pen ends below both."""
    top, x0, width = pen.y, pen.rect.left(), pen.rect.width()
    col_w = width * split
    kw = {} if pt is None else {"pt": pt}
    pen.table(left, key_w_mm=key_w_mm[0], **kw)
    left_end = pen.y
    if right:
        pen.y = top
        pen.rect = QRectF(x0 + col_w, pen.rect.top(), width - col_w, pen.rect.height())
        pen.table(right, key_w_mm=key_w_mm[1], **kw)
        pen.rect = QRectF(x0, pen.rect.top(), width, pen.rect.height())
    pen.y = max(pen.y, left_end)


def reader_section_lines(d: ReportData) -> list[str]:
    """The reader's section as text; none where the reader recorded no assessment."""
    a = d.reader
    if a is None:
        return []
    return [READER_HEADING, *(f"{k}: {v}" for k, v in a.lines())]


def paint_reader_section(pen: _Pen, d: ReportData) -> None:
    """The reader's own assessment under its own heading, marked apart from the model's output by
    a bar in the margin; two columns so that the page still fits. Nothing without an assessment."""
    a = d.reader
    if a is None:
        return
    p, mm = pen.p, pen.mm
    pen.heading(READER_HEADING)
    top = pen.y
    rows = [(k, v) for k, v in a.lines() if k != "Comment"]
    half = (len(rows) + 1) // 2
    x0 = pen.rect.left()
    _two_columns(pen, rows[:half], rows[half:], (32, 24), pt=9)
    if a.comment:
        pen.table([("Comment", a.comment)], key_w_mm=32, pt=9)
    p.setPen(QPen(QColor(60, 120, 60), mm(0.6)))
    p.drawLine(QPointF(x0 - mm(2), top), QPointF(x0 - mm(2), pen.y))


def report_text(d: ReportData) -> list[str]:
    """The report's content as lines of plain text (the PDF shows exactly these values)."""
    when = d.generated.strftime("%Y-%m-%d %H:%M %Z").strip()
    lines = [
        "Breast ultrasound - decision-support report",
        DISCLAIMER,
        *identity_lines(d),
        f"File: {d.file_name}",
        f"SHA-256: {d.sha256}",
        f"Report generated: {when}",
        f"Frame: {d.frame_index + 1} of {d.n_frames}",
        *risk_lines(d.risk, d.input_warnings),
        d.headline,
    ]
    lines += [f"{c}: {wording.probability(p)}" for c, p in d.probabilities.items()]
    if d.outline_edited:
        lines.append(OUTLINE_EDITED_NOTE)
    lines += [f"{k}: {v}" for k, v in format_measurements(d.measurements)]
    lines += [f"{k}: {v}" for k, v in d.caliper_rows()]
    lines.append(d.spacing_note)
    lines += reader_section_lines(d)
    created = d.card.get("created", "")
    lines.append(f"Model: {d.model_name} {d.model_version}" + (f" ({created})" if created else ""))
    lines += [f"{k}: {v}" for k, v in _metric_rows(d.card)]
    return lines


# --- drawing -------------------------------------------------------------------------------------


class _Pen:
    """A cursor down the page: text in points, positions in device pixels (``dpi`` per inch)."""

    def __init__(self, p: QPainter, rect: QRectF, dpi: float) -> None:
        self.p, self.rect, self.dpi = p, rect, dpi
        self.y = rect.top()

    def mm(self, v: float) -> float:
        return v * self.dpi / 25.4

    def font(self, pt: float, bold: bool = False, mono: bool = False) -> QFont:
        f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
        if mono:
            f.setStyleHint(QFont.StyleHint.Monospace)
        f.setPointSizeF(pt)
        f.setBold(bold)
        self.p.setFont(f)
        return f

    def text(
        self,
        s: str,
        pt: float = 9.5,
        bold: bool = False,
        colour: QColor | None = None,
        mono: bool = False,
        x: float = 0,
    ) -> None:
        f = self.font(pt, bold, mono)
        self.p.setPen(colour or QColor(20, 20, 20))
        r = QRectF(self.rect.left() + x, self.y, self.rect.width() - x, self.rect.height())
        br = self.p.boundingRect(r, int(Qt.TextFlag.TextWordWrap), s)
        self.p.drawText(r, int(Qt.TextFlag.TextWordWrap), s)
        self.y += max(br.height(), QFontMetricsF(f, self.p.device()).height())

    def heading(self, s: str) -> None:
        self.y += self.mm(2.5)
        self.text(s, 11, bold=True, colour=QColor(30, 60, 110))
        self.p.setPen(QPen(QColor(30, 60, 110), self.mm(0.3)))
        self.p.drawLine(self.rect.left(), self.y, self.rect.right(), self.y)
        self.y += self.mm(1.5)

    def table(self, rows: list[tuple[str, str]], key_w_mm: float = 55, pt: float = 9.5) -> None:
        for k, v in rows:
            y0 = self.y
            self.text(k, pt, colour=QColor(80, 80, 80))
            self.y = y0
            self.text(v, pt, bold=True, x=self.mm(key_w_mm))


def _paint_risk(p: QPainter, pen: _Pen, r: RiskAssessment, warnings: tuple[InputWarning, ...]) -> None:
    """Headline, a 0-1 bar with the card's bands and a marker at p(malignant), meaning, warnings."""
    mm = pen.mm
    lines = risk_lines(r, warnings)
    pen.text(lines[0], 13, bold=True, colour=QColor(160, 40, 30) if r.suspicious else QColor(30, 40, 60))
    bar = QRectF(pen.rect.left(), pen.y + mm(1.5), mm(120), mm(4))
    p.setPen(QPen(QColor(150, 150, 150), mm(0.2)))
    p.setBrush(QColor(240, 240, 240))
    p.drawRect(bar)
    tints = (QColor(190, 222, 200), QColor(245, 222, 170), QColor(240, 180, 170))
    p.setPen(Qt.PenStyle.NoPen)
    for i, b in enumerate(r.bands):
        p.setBrush(tints[band_tone(i, len(r.bands))])
        p.drawRect(QRectF(bar.left() + b.lower * bar.width(), bar.top(), (b.upper - b.lower) * bar.width(), bar.height()))
    pen.font(7.5)
    p.setPen(QPen(QColor(90, 90, 90), mm(0.25)))
    ticks = [0.0, *(b.lower for b in r.bands[1:]), 1.0]
    xs = [bar.left() + v * bar.width() for v in ticks]
    for x in xs:
        p.drawLine(x, bar.bottom(), x, bar.bottom() + mm(1))
    for rect, text in tick_labels(xs, [f"{v:.2f}" for v in ticks], p.fontMetrics(), bar.left() - mm(6),
                                  bar.right() + mm(6), bar.bottom() + mm(1)):
        p.drawText(rect, int(Qt.AlignmentFlag.AlignHCenter), text)
    x = bar.left() + r.p_malignant * bar.width()
    p.setPen(QPen(QColor(20, 20, 20), mm(0.6)))
    p.drawLine(x, bar.top() - mm(1.2), x, bar.bottom() + mm(0.6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    pen.font(8.5, bold=True)
    p.setPen(QColor(20, 20, 20))
    p.drawText(QRectF(bar.right() + mm(3), bar.top() - mm(1), mm(45), mm(6)), int(Qt.AlignmentFlag.AlignVCenter),
               f"p(malignant) {r.p_malignant:.2f}")
    pen.y = bar.bottom() + mm(5)
    for line in lines[1:]:
        warn = line.startswith("Input check:")
        pen.text(line, 9, bold=warn, colour=QColor(170, 90, 0) if warn else QColor(60, 60, 60))


def paint_report(p: QPainter, d: ReportData, page: QRectF, dpi: float, picture_mm: float | None = None,
                 new_page: Any = None) -> float:
    """Draw the one-page report inside ``page`` (device pixels at ``dpi``); the two pictures are at
    most ``picture_mm`` tall (default: what fits, ``fit_picture_mm``). Returns how far down the
    content above the footer reached (device pixels): below the footer's top, it overlaps. With
    ``new_page`` (the PDF writer's ``newPage``), the model section that no longer fits on page 1
    (patient header, risk and reader's sections all shown) goes on a page 2 instead."""
    pen = _Pen(p, page, dpi)
    mm = pen.mm
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)

    # Title and time.
    when = d.generated.strftime("%Y-%m-%d %H:%M %Z").strip()
    y0 = pen.y
    pen.text("Breast ultrasound - decision-support report", 15, bold=True, colour=QColor(30, 60, 110))
    y1 = pen.y
    pen.y = y0
    pen.font(9)
    p.setPen(QColor(80, 80, 80))
    p.drawText(QRectF(page.left(), y0, page.width(), mm(8)), int(Qt.AlignmentFlag.AlignRight), f"busapp {__version__}")
    pen.y = y1 + mm(1)

    # Decision-support notice: boxed, above everything else.
    pen.font(9.5, bold=True)
    box_h = p.boundingRect(
        QRectF(0, 0, page.width() - mm(6), page.height()), int(Qt.TextFlag.TextWordWrap), DISCLAIMER
    ).height() + mm(4)
    box = QRectF(page.left(), pen.y, page.width(), box_h)
    p.setPen(QPen(QColor(200, 130, 0), mm(0.5)))
    p.setBrush(QColor(255, 244, 214))
    p.drawRoundedRect(box, mm(1.5), mm(1.5))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QColor(90, 55, 0))
    p.drawText(box.adjusted(mm(3), mm(2), -mm(3), -mm(2)), int(Qt.TextFlag.TextWordWrap), DISCLAIMER)
    pen.y = box.bottom() + mm(2)
    paint_identity_header(pen, d)

    pen.heading("Image")
    pen.table(
        [
            ("File", d.file_name),
            ("Report generated", when),
            ("Frame", f"{d.frame_index + 1} of {d.n_frames}   ({d.image.shape[1]} x {d.image.shape[0]} pixels)"),
        ],
        key_w_mm=38,
    )
    y0 = pen.y
    pen.text("SHA-256", 9.5, colour=QColor(80, 80, 80))
    pen.y = y0
    pen.text(d.sha256, 8, mono=True, x=mm(38))

    # Two pictures side by side: as acquired, and with the outline + calipers.
    pen.y += mm(3)
    gap = mm(5)
    w = (page.width() - gap) / 2
    # Room for the reader's part and the patient header where they are shown: one page always.
    h_max = mm(picture_mm if picture_mm is not None else fit_picture_mm(d, dpi))
    pics = [
        ("Image", array_to_qimage(d.image)),
        ("Lesion outline" + (" (EDITED BY READER)" if d.outline_edited else "")
         + " and calipers (D1 longest, D2 perpendicular" + (", C the reader's" if d.reader_lines() else "") + ")",
         render_overlay(d.image, d.mask, d.measurements, reader_lines=d.reader_lines(),
                        note="Outline edited by reader" if d.outline_edited else None)),
    ]
    ih, iw = d.image.shape[:2]
    s = min(w / iw, h_max / ih)
    dw, dh = iw * s, ih * s
    for k, (caption, img) in enumerate(pics):
        x = page.left() + k * (w + gap) + (w - dw) / 2
        target = QRectF(x, pen.y, dw, dh)
        p.fillRect(target, QColor(0, 0, 0))
        p.drawImage(target, img)
        p.setPen(QPen(QColor(150, 150, 150), mm(0.2)))
        p.drawRect(target)
        pen.font(8)
        p.setPen(QColor(80, 80, 80))
        p.drawText(
            QRectF(page.left() + k * (w + gap), pen.y + dh + mm(1), w, mm(8)),
            int(Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap),
            caption,
        )
    pen.y += dh + mm(9)

    # The malignancy assessment first, then the class probabilities (as in the app's panel).
    if d.risk is not None:
        pen.heading("Malignancy assessment")
        _paint_risk(p, pen, d.risk, d.input_warnings)
    pen.heading("Class probabilities")
    # Neutral like the app's panel: a red "malignant" would read as a finding, not a suggestion.
    colour = QColor(170, 90, 0) if d.low_confidence else QColor(30, 40, 60)
    pen.text(d.headline, 10.5, bold=True, colour=colour)
    if d.low_confidence:
        pen.text(
            "LOW CONFIDENCE: no class is clearly favoured; read this image without weight on the model.",
            9.5,
            bold=True,
            colour=QColor(170, 90, 0),
        )
    bar_x, bar_w = mm(38), mm(80)
    for c, prob in d.probabilities.items():
        y0 = pen.y
        pen.text(c, 9.5, colour=QColor(80, 80, 80))
        bh = mm(3.2)
        r = QRectF(page.left() + bar_x, y0 + mm(0.8), bar_w, bh)
        p.setPen(QPen(QColor(170, 170, 170), mm(0.2)))
        p.setBrush(QColor(240, 240, 240))
        p.drawRect(r)
        p.setBrush(colour if c == d.label else QColor(140, 150, 165))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRect(QRectF(r.left(), r.top(), bar_w * max(0.0, min(1.0, prob)), bh))
        p.setBrush(Qt.BrushStyle.NoBrush)
        pen.y = y0
        pen.text(f"{c}: {wording.probability(prob)}", 9.5, bold=c == d.label, x=bar_x + bar_w + mm(4))

    pen.heading("Lesion measurements (largest outlined region)")
    if d.outline_edited:
        pen.text(OUTLINE_EDITED_NOTE, 9, bold=True, colour=QColor(60, 120, 60))
    _two_columns(pen, format_measurements(d.measurements), d.caliper_rows(), (44, 36), split=0.6)
    user = d.measurements is not None and d.measurements.spacing_source == "user calibrated"
    pen.text(d.spacing_note, 8.5, bold=user, colour=QColor(170, 90, 0) if user else QColor(80, 80, 80))
    pen.text(
        "D1: longest diameter (maximum Feret diameter); D2: longest chord at right angles to D1. "
        "Depth-to-width > 1 is 'taller than wide' (probe at the top of the image)."
        + (" Width/depth: the outline's extent parallel/at right angles to the skin." if d.calipers else "")
        + (" C1, C2...: lines the reader drew." if d.reader_lines() else ""),
        8,
        colour=QColor(100, 100, 100),
    )

    paint_reader_section(pen, d)

    pages = 1
    needed = mm(8) + (len(_metric_rows(d.card)) + 2) * mm(4.4)
    if new_page is not None and pen.y + needed > page.bottom() - mm(11):  # only offered when it overflows
        _paint_footer(p, pen, page, when, "page 1 of 2")
        new_page()
        pen.y = page.top()
        pages = 2
        who = (f"{d.identity.name or 'Name not given'} \u00b7 ID {d.identity.patient_id or '-'} \u00b7 "
               if d.identity is not None else "")
        pen.text(f"{who}{d.file_name} \u00b7 SHA-256 {d.sha256[:16]}\u2026 \u00b7 continued from page 1", 8.5,
                 colour=QColor(80, 80, 80))  # every page says whose report it is

    pen.heading("Model")
    created = d.card.get("created", "")
    pen.text(f"Model: {d.model_name} {d.model_version}" + (f" ({created})" if created else ""), 9.5, bold=True)
    metrics = d.card.get("metrics") or {}
    n = metrics.get("n_test_images")
    pen.text(
        "Performance on the held-out test set" + (f" ({n} images)" if n else "") + ":", 9, colour=QColor(80, 80, 80)
    )
    rows = _metric_rows(d.card)
    if rows:
        pen.table(rows, key_w_mm=55, pt=9)
    else:
        pen.text("The model card has no test metrics.", 9, colour=QColor(170, 90, 0))

    content_bottom = pen.y
    _paint_footer(p, pen, page, when, f"page {pages} of {pages}")
    return content_bottom


def _paint_footer(p: QPainter, pen: _Pen, page: QRectF, when: str, page_text: str) -> None:
    """Footer at the bottom of the page."""
    mm = pen.mm
    pen.font(7.5)
    foot = QRectF(page.left(), page.bottom() - mm(9), page.width(), mm(9))
    p.setPen(QPen(QColor(180, 180, 180), mm(0.2)))
    p.drawLine(foot.left(), foot.top(), foot.right(), foot.top())
    p.setPen(QColor(110, 110, 110))
    p.drawText(
        foot.adjusted(0, mm(1), 0, 0),
        int(Qt.TextFlag.TextWordWrap),
        f"busapp {__version__} - {when} - {page_text}. {DISCLAIMER}",
    )


PICTURE_MM, MIN_PICTURE_MM = 78.0, 50.0  # below 50 mm the pictures stop being useful: page 2 instead


def fit_picture_mm(d: ReportData, dpi: float = DPI) -> float:
    """The picture height (mm) with which the report fits its page (see ``fit_page``)."""
    return fit_page(d, dpi)[0]


def fit_page(d: ReportData, dpi: float = DPI) -> tuple[float, bool]:
    """The tallest pictures with which everything fits above the footer on the one page: the
    sections shown vary (patient header, risk, reader's assessment), so lay the page out on a
    1-pixel device of the same resolution (same font metrics, nothing drawn) and shrink the
    pictures by what overflows. Returns (height in mm, whether everything fits on one page)."""
    probe = QImage(1, 1, QImage.Format.Format_RGB32)
    dpm = round(dpi / 0.0254)
    probe.setDotsPerMeterX(dpm)
    probe.setDotsPerMeterY(dpm)
    page = _page_rect(dpi)
    k = dpi / 25.4
    limit = page.bottom() - 11 * k  # the footer's top, less a little air
    ih, iw = d.image.shape[:2]
    width_mm = (page.width() - 5 * k) / 2 / k
    mm_now = min(PICTURE_MM, width_mm * ih / iw)  # the height the pictures really take
    for _ in range(3):
        p = QPainter(probe)
        try:
            bottom = paint_report(p, d, page, dpi, picture_mm=mm_now)
        finally:
            p.end()
        over = (bottom - limit) / k
        if over <= 0 or mm_now <= MIN_PICTURE_MM:
            break
        mm_now = max(MIN_PICTURE_MM, mm_now - over)
    return mm_now, over <= 0


def _page_rect(dpi: float) -> QRectF:
    k = dpi / 25.4
    return QRectF(MARGIN_MM * k, MARGIN_MM * k, (PAGE_MM[0] - 2 * MARGIN_MM) * k, (PAGE_MM[1] - 2 * MARGIN_MM) * k)


def report_pdf_bytes(d: ReportData) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    w = QPdfWriter(buf)
    w.setResolution(DPI)
    w.setPageLayout(
        QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0))
    )
    w.setTitle(f"busapp report - {d.label} - {d.model_name} {d.model_version}")
    w.setCreator(f"busapp {__version__}")
    p = QPainter(w)
    try:
        picture_mm, fits = fit_page(d, DPI)
        paint_report(p, d, _page_rect(DPI), DPI, picture_mm, new_page=None if fits else w.newPage)
    finally:
        p.end()
    buf.close()
    return bytes(data.data())


def render_report_page(d: ReportData, dpi: float = 100) -> QImage:
    """Page 1 as an image (preview, tests): the same drawing as the PDF."""
    k = dpi / 25.4
    img = QImage(round(PAGE_MM[0] * k), round(PAGE_MM[1] * k), QImage.Format.Format_RGB32)
    img.fill(QColor(255, 255, 255))
    dpm = round(dpi / 0.0254)
    img.setDotsPerMeterX(dpm)
    img.setDotsPerMeterY(dpm)
    p = QPainter(img)
    try:
        paint_report(p, d, _page_rect(dpi), dpi)
    finally:
        p.end()
    return img


def write_report(
    path: Path,
    loaded_image: Any,
    prediction: Any,
    measurements: LesionMeasurements | None,
    card: dict[str, Any],
    frame_index: int = 0,
    *,
    sha256: str | None = None,
    audit: Any = None,
    generated: _dt.datetime | None = None,
    reader: Any = None,
    outline_edited: bool = False,
    identity: Any = None,
    risk: RiskAssessment | None = None,
    input_warnings: tuple[InputWarning, ...] | None = None,
    calipers: tuple[Any, ...] = (),
) -> ReportData:
    """File > Export report: write the PDF for one analysed image atomically; returns what it holds.

    ``loaded_image``: a ``busapp.core.imageio.LoadedImage``; ``prediction``: a ``Prediction`` for
    frame ``frame_index``; ``card``: the model card (``ModelBundle.card``). With ``audit`` (an
    ``AuditLog``) an "export_report" record (sha256 only, no file name) is appended.
    """
    d = build_report_data(loaded_image, prediction, measurements, card, frame_index, sha256, generated,
                          risk=risk, input_warnings=input_warnings, reader=reader,
                          outline_edited=outline_edited, identity=identity, calipers=calipers)
    write_bytes_atomic(Path(path), report_pdf_bytes(d))
    if audit is not None:
        audit.record(
            "export_report",
            sha256=d.sha256,
            model={"name": d.model_name, "version": d.model_version},
            outputs={"label": d.label, **({"p_malignant": round(d.risk.p_malignant, 4), "band": d.risk.band}
                                          if d.risk is not None else {})},
            details={"format": "pdf", "frame": frame_index},
        )
    return d
