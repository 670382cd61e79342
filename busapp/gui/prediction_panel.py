"""The prediction panel: the lesion's malignancy assessment first, then the class probabilities,
the input check, lesion size and which model.

The headline is p(malignant) in the model card's bands (``core.risk``), on a continuous bar with
the bands marked and the band's meaning in one line; a card without a validated decision rule
says so. "Normal" is worded as a statement about the image (no lesion found), not a risk level.
Warnings that the image is unlike the training images (``core.input_check``) sit right below.
Wording is deliberately modest and the low-confidence state explicit, so a reader is invited to
check the image rather than to trust a label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from busapp.gui.elided_label import ElidedLabel
from busapp.report.render import tick_labels

if TYPE_CHECKING:
    from busapp.core.input_check import InputWarning
    from busapp.core.measure import LesionMeasurements
    from busapp.core.risk import RiskAssessment
    from busapp.gui.worker import Analysis

USER_CALIBRATED = "user calibrated"  # == busapp.core.measure.USER_CALIBRATED (no numpy at startup)
ACCENT = QColor(91, 155, 213)
MUTED_BAR = QColor(96, 104, 116)
TRACK = QColor(44, 48, 54)
ROW_H = 26
# Band tints on the risk bar, lowest band first (muted: the marker and the text carry the message).
BAND_COLOURS = (QColor(78, 128, 104), QColor(170, 138, 70), QColor(178, 84, 72))
SUSPICIOUS_STYLE = 'QLabel#headline[state="suspicious"] { color: #f08a78; }'


def risk_of(analysis: object, card: dict | None) -> RiskAssessment:
    """The analysis's own assessment (core.analysis.AnalysisResult carries one), else the one the
    card's decision rule gives for its probabilities: the same function either way."""
    from busapp.core.risk import assess

    risk = getattr(analysis, "risk", None) or getattr(getattr(analysis, "result", None), "risk", None)
    return risk if risk is not None else assess(analysis.prediction, card=card or {})


def warnings_of(analysis: object) -> tuple[InputWarning, ...]:
    w = getattr(analysis, "input_warnings", None)
    if w is None:
        w = getattr(getattr(analysis, "result", None), "input_warnings", None)
    return tuple(w or ())


def band_colour(index: int, n_bands: int) -> QColor:
    """Tint of band ``index`` of ``n_bands`` (``core.risk.band_tone``)."""
    from busapp.core.risk import band_tone

    return QColor(BAND_COLOURS[band_tone(index, n_bands)])


def list_tone(analysis: object, card: dict | None) -> QColor | None:
    """The list's status dot for a result: its risk band's tint, None without a validated rule."""
    risk = risk_of(analysis, card)
    names = [b.name for b in risk.bands]
    if risk.band is None or risk.band not in names:
        return None
    return band_colour(names.index(risk.band), len(names))


def list_detail(analysis: object, card: dict | None) -> str:
    """The image list's second line: the same wording as the panel, shortened; a warning sign
    when the input check flagged the image."""
    risk = risk_of(analysis, card)
    pred = analysis.prediction
    text = risk.list_text
    if pred.low_confidence:
        text = f"uncertain \u00b7 {text}"
    return ("\u26a0 " + text) if warnings_of(analysis) else text


class RiskBar(QWidget):
    """p(malignant) on a continuous 0-1 bar, the card's bands tinted and their edges ticked, a
    marker at the value. Without a validated rule: a plain bar and no bands."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("riskBar")
        self.risk: RiskAssessment | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_risk(self, risk: RiskAssessment | None) -> None:
        self.risk = risk
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(260, 40)

    def minimumSizeHint(self) -> QSize:
        return QSize(180, 40)

    def paintEvent(self, event: QPaintEvent) -> None:
        r = self.risk
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        bar = QRectF(6, 8, max(10.0, self.width() - 12.0), 12)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(TRACK)
        p.drawRoundedRect(bar, 3, 3)
        if r is None:
            p.end()
            return
        x_of = lambda v: bar.left() + max(0.0, min(1.0, v)) * bar.width()  # noqa: E731
        for i, b in enumerate(r.bands):
            p.setBrush(band_colour(i, len(r.bands)))
            p.drawRect(QRectF(x_of(b.lower), bar.top(), x_of(b.upper) - x_of(b.lower), bar.height()))
        small = self.font()
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.8))
        p.setFont(small)
        p.setPen(QColor(160, 166, 175))
        edges = [b.lower for b in r.bands[1:]]
        for v in edges:
            x = x_of(v)
            p.drawLine(int(x), int(bar.top()) - 2, int(x), int(bar.bottom()) + 2)
        for rect, text in tick_labels([x_of(v) for v in edges], [f"{v:.2f}" for v in edges], p.fontMetrics(),
                                      bar.left(), bar.right(), bar.bottom() + 3):
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        if not edges:
            for v, align in ((0.0, Qt.AlignmentFlag.AlignLeft), (1.0, Qt.AlignmentFlag.AlignRight)):
                x = x_of(v)
                p.drawText(QRectF(x - (0 if v == 0 else 40), bar.bottom() + 3, 40, 14), align, f"{v:.0f}")
        # the marker: a white needle with a dark outline, readable on every band
        x = x_of(r.p_malignant)
        p.setPen(QColor(20, 22, 25))
        p.setBrush(QColor(240, 242, 245))
        p.drawRoundedRect(QRectF(x - 2.5, bar.top() - 5, 5, bar.height() + 10), 2, 2)
        p.end()


class ProbabilityBars(QWidget):
    """One labelled bar per class; the most probable one drawn in the accent colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probabilityBars")
        self._probs: dict[str, float] = {}
        self._classes: tuple[str, ...] = ("normal", "benign", "malignant")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_probabilities(self, probs: dict[str, float]) -> None:
        self._probs = dict(probs)
        if probs:
            self._classes = tuple(probs)
        self.updateGeometry()
        self.update()

    def probabilities(self) -> dict[str, float]:
        return dict(self._probs)

    def sizeHint(self) -> QSize:
        return QSize(260, ROW_H * len(self._classes) + 2)

    def minimumSizeHint(self) -> QSize:
        return QSize(180, ROW_H * len(self._classes) + 2)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fm = QFontMetrics(self.font())
        label_w = max(fm.horizontalAdvance(c) for c in self._classes) + 12
        value_w = fm.horizontalAdvance("0.00") + 10
        top_class = max(self._probs, key=self._probs.__getitem__) if self._probs else None
        for i, c in enumerate(self._classes):
            y = i * ROW_H
            v = self._probs.get(c)
            p.setPen(QColor(220, 223, 228) if c == top_class else QColor(160, 166, 175))
            p.drawText(QRectF(0, y, label_w, ROW_H), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, c)
            bar = QRectF(label_w, y + ROW_H / 2 - 5, max(10.0, self.width() - label_w - value_w), 10)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(TRACK)
            p.drawRoundedRect(bar, 4, 4)
            if v is not None:
                filled = QRectF(bar.left(), bar.top(), max(0.0, min(1.0, v)) * bar.width(), bar.height())
                p.setBrush(ACCENT if c == top_class else MUTED_BAR)
                if filled.width() >= 1:
                    p.drawRoundedRect(filled, 4, 4)
                p.setPen(QColor(220, 223, 228) if c == top_class else QColor(160, 166, 175))
                p.drawText(QRectF(bar.right(), y, value_w, ROW_H),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{v:.2f}")
        p.end()


def _section(text: str) -> QLabel:
    lab = QLabel(text.upper())
    lab.setObjectName("sectionTitle")
    return lab


class PredictionPanel(QWidget):
    """Shows one image's state: nothing selected, waiting, error, or the model's result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictionPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 14, 16, 10)
        lay.setSpacing(6)

        self.image_title = ElidedLabel()  # a long file name must not widen the panel
        self.image_title.setObjectName("imageTitle")
        self.image_info = QLabel()
        self.image_info.setObjectName("secondary")
        self.image_info.setWordWrap(True)
        lay.addWidget(self.image_title)
        lay.addWidget(self.image_info)
        lay.addSpacing(6)

        self.risk_title = _section("Malignancy assessment")
        lay.addWidget(self.risk_title)
        self.frame_label = QLabel()  # cine: which frame the result belongs to
        self.frame_label.setObjectName("secondary")
        self.frame_label.hide()
        lay.addWidget(self.frame_label)
        self.headline = QLabel()
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)
        self.headline.setStyleSheet(SUSPICIOUS_STYLE)
        lay.addWidget(self.headline)
        self.risk_bar = RiskBar()
        lay.addWidget(self.risk_bar)
        self.band_meaning = QLabel()  # the band's meaning, or why there is no validated threshold
        self.band_meaning.setObjectName("secondary")
        self.band_meaning.setWordWrap(True)
        lay.addWidget(self.band_meaning)
        self.subline = QLabel()
        self.subline.setObjectName("secondary")
        self.subline.setWordWrap(True)
        lay.addWidget(self.subline)

        self.input_warnings = QLabel()  # "unlike the training images": warns, never blocks
        self.input_warnings.setObjectName("lowConfidence")
        self.input_warnings.setWordWrap(True)
        self.input_warnings.hide()
        lay.addWidget(self.input_warnings)

        self.low_confidence = QLabel()
        self.low_confidence.setObjectName("lowConfidence")
        self.low_confidence.setWordWrap(True)
        self.low_confidence.hide()
        lay.addWidget(self.low_confidence)

        self.error_box = QLabel()
        self.error_box.setObjectName("errorBox")
        self.error_box.setWordWrap(True)
        self.error_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_box.hide()
        lay.addWidget(self.error_box)

        lay.addSpacing(6)
        self.class_title = _section("Class probabilities")
        lay.addWidget(self.class_title)
        self.class_line = QLabel()  # the top class in words ("the model found no lesion", "leans benign")
        self.class_line.setObjectName("secondary")
        self.class_line.setWordWrap(True)
        lay.addWidget(self.class_line)
        self.bars = ProbabilityBars()
        lay.addSpacing(2)
        lay.addWidget(self.bars)

        lay.addSpacing(8)
        self.size_title = _section("Outlined region")
        lay.addWidget(self.size_title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(3)
        self._size_values: dict[str, QLabel] = {}
        for row, (key, label) in enumerate(
            (("area", "Area"), ("longest", "Longest axis"), ("perpendicular", "Perpendicular axis"),
             ("dw", "Depth : width"))
        ):
            name = QLabel(label)
            name.setObjectName("secondary")
            value = QLabel("\u2013")
            value.setObjectName("value")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(name, row, 0)
            grid.addWidget(value, row, 1)
            self._size_values[key] = value
        self.size_grid = QWidget()
        self.size_grid.setLayout(grid)
        grid.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.size_grid)
        self.size_note = QLabel()
        self.size_note.setObjectName("note")
        self.size_note.setWordWrap(True)
        lay.addWidget(self.size_note)

        lay.addSpacing(8)
        self.model_line = QLabel()
        self.model_line.setObjectName("note")
        self.model_line.setWordWrap(True)
        lay.addWidget(self.model_line)
        for lab in self.findChildren(QLabel):
            lab.setIndent(0)  # styled labels otherwise get an automatic indent
        self._low_conf_threshold: float | None = None
        self._card: dict | None = None
        self.risk: RiskAssessment | None = None
        self.warnings: tuple[InputWarning, ...] = ()
        self._model_text = "Model: loading\u2026"
        self.show_empty()

    # -- model info ------------------------------------------------------------------------------
    def set_model(self, name: str, version: str, low_confidence_below: float | None = None) -> None:
        self._model_text = f"Model: {name} {version}"
        self._low_conf_threshold = low_confidence_below
        self.model_line.setText(self._model_text)

    def set_card(self, card: dict | None) -> None:
        """The model card whose decision rule sets the bands (when a result carries no assessment)."""
        self._card = card

    def set_model_error(self, message: str) -> None:
        self._model_text = "Model: not available"
        self.model_line.setText(self._model_text)

    # -- states ----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.low_confidence.hide()
        self.error_box.hide()
        self.bars.set_probabilities({})
        self.bars.hide()  # empty bars read like "all zero": only shown with a result
        self.risk = None
        self.warnings = ()
        self.risk_bar.set_risk(None)
        for w in (self.risk_bar, self.band_meaning, self.input_warnings, self.class_title, self.class_line):
            w.hide()
        self.headline.setProperty("state", "")
        self._repolish(self.headline)
        self.set_measurements(None, visible=False)
        self.model_line.setText(self._model_text)
        self.set_frame(None)
        self.state = "empty"
        self.shown_label: str | None = None
        self.shown_frame: int | None = None  # 0-based frame of the result shown, for cines

    def _set_sub(self, text: str) -> None:
        self.subline.setText(text)
        self.subline.setVisible(bool(text))

    def set_image_info(self, name: str, info: str = "") -> None:
        self.image_title.setText(name)
        self.image_info.setText(info)
        self.image_info.setVisible(bool(info))

    def show_empty(self) -> None:
        self._reset()
        self.set_image_info("No image", "Open or drop images to analyse them.")
        self.headline.setText("\u2013")
        self._set_sub("")

    def show_pending(self, text: str) -> None:
        self._reset()
        self.state = "pending"
        self.headline.setText(text)
        self.headline.setProperty("state", "pending")
        self._repolish(self.headline)
        self._set_sub("The result appears here when the model has finished.")

    def show_error(self, message: str, title: str = "Could not analyse this image") -> None:
        self._reset()
        self.state = "error"
        self.headline.setText(title)
        self.headline.setProperty("state", "error")
        self._repolish(self.headline)
        self._set_sub("")
        self.error_box.setText(message)
        self.error_box.show()

    def set_frame(self, frame: int | None, n_frames: int = 1) -> None:
        """Say which frame of a cine the state shown belongs to (hidden for still images)."""
        on = frame is not None and n_frames > 1
        self.frame_label.setText(f"Frame {frame + 1} of {n_frames}" if on else "")
        self.frame_label.setVisible(on)

    def show_result(self, analysis: Analysis) -> None:
        self._reset()
        pred = analysis.prediction
        self.state = "result"
        self.shown_label = pred.label
        if analysis.n_frames > 1:
            self.shown_frame = analysis.frame_index
            self.set_frame(analysis.frame_index, analysis.n_frames)
        p = pred.confidence
        risk = self.risk = risk_of(analysis, self._card)
        self.headline.setText(risk.headline)
        self.headline.setProperty("state", "suspicious" if risk.suspicious else "result")
        self._repolish(self.headline)
        self.risk_bar.set_risk(risk)
        self.risk_bar.show()
        if risk.validated:
            meaning = risk.band_meaning or ""
            self.band_meaning.setText(f"{risk.band}: {meaning}" if meaning else str(risk.band))
            if risk.threshold_source == "site":
                self._set_sub(f"Suspicious from {risk.threshold:.2f}: the {risk.site_note} (the model card's "
                              f"threshold is {risk.card_threshold:.2f}).")
            else:
                self._set_sub(f"Bands and threshold ({risk.threshold:.2f}) from the model card, validated on "
                              "hospitals the model had not seen.")
        else:
            self.band_meaning.setText(f"No validated threshold: {risk.note}. Read p(malignant) as a model "
                                      "output, not as a decision rule.")
            self._set_sub("")
        self.band_meaning.show()
        self.warnings = warnings_of(analysis)
        if self.warnings:
            self.input_warnings.setText("\n".join(f"\u26a0 {w.message}" for w in self.warnings))
            self.input_warnings.show()
        self.class_title.show()
        from busapp.core.risk import class_summary

        self.class_line.setText(class_summary(pred))
        self.class_line.show()
        if pred.low_confidence:
            limit = f", below {self._low_conf_threshold:.2f}" if self._low_conf_threshold else ""
            self.low_confidence.setText(
                f"Low confidence: no class clearly wins (top probability {p:.2f}{limit}). "
                "Rely on your own reading of the image."
            )
            self.low_confidence.show()
        self.bars.set_probabilities(pred.probabilities)
        self.bars.show()
        self.set_measurements(analysis.measurements, visible=True)
        if analysis.measurements is None and pred.outline_note:
            self.size_note.setText(pred.outline_note)  # why there is no outline, not just that there is none
        self.model_line.setText(
            f"Model: {pred.model_name} {pred.model_version}  \u00b7  {analysis.seconds * 1000:.0f} ms"
        )

    def set_measurements(self, m: LesionMeasurements | None, visible: bool = True) -> None:
        for w in (self.size_title, self.size_grid, self.size_note):
            w.setVisible(visible)
        user = m is not None and m.spacing_source == USER_CALIBRATED
        self.size_title.setText("OUTLINED REGION \u00b7 USER CALIBRATED" if user else "OUTLINED REGION")
        if m is None:
            for v in self._size_values.values():
                v.setText("\u2013")
            self.size_note.setText("The model outlined no region in this image." if visible else "")
            return
        from busapp.core import wording  # one number format and wording for panel and report

        for key, _label, value in wording.measurement_rows(m):
            self._size_values[key].setText(value)
        self.size_note.setText(f"{wording.pixel_size_note(m)} Largest outlined region only.")

    def measurement_texts(self) -> dict[str, str]:
        return {k: v.text() for k, v in self._size_values.items()}

    @staticmethod
    def _repolish(w: QWidget) -> None:
        w.style().unpolish(w)
        w.style().polish(w)


class Disclaimer(QFrame):
    """The permanent decision-support notice."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("disclaimer")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setObjectName("disclaimerText")
        lay.addWidget(self.label)
