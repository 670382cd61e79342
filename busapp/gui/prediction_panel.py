"""The prediction panel: what the model suggests, how sure it is, lesion size, which model.

Wording is deliberately modest ("suggests", "leans") and the low-confidence state is explicit,
so a reader is invited to check the image rather than to trust a label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from busapp.core.measure import LesionMeasurements
    from busapp.gui.worker import Analysis

USER_CALIBRATED = "user calibrated"  # == busapp.core.measure.USER_CALIBRATED (no numpy at startup)
ACCENT = QColor(91, 155, 213)
MUTED_BAR = QColor(96, 104, 116)
TRACK = QColor(44, 48, 54)
ROW_H = 26


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


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


class PredictionPanel(QWidget):
    """Shows one image's state: nothing selected, waiting, error, or the model's result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictionPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 14, 16, 10)
        lay.setSpacing(6)

        self.image_title = QLabel()
        self.image_title.setObjectName("imageTitle")
        self.image_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.image_info = QLabel()
        self.image_info.setObjectName("secondary")
        self.image_info.setWordWrap(True)
        lay.addWidget(self.image_title)
        lay.addWidget(self.image_info)
        lay.addSpacing(6)

        lay.addWidget(_section("Model output"))
        self.frame_label = QLabel()  # cine: which frame the result belongs to
        self.frame_label.setObjectName("secondary")
        self.frame_label.hide()
        lay.addWidget(self.frame_label)
        self.headline = QLabel()
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)
        self.subline = QLabel()
        self.subline.setObjectName("secondary")
        self.subline.setWordWrap(True)
        lay.addWidget(self.headline)
        lay.addWidget(self.subline)

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
        self._model_text = "Model: loading\u2026"
        self.show_empty()

    # -- model info ------------------------------------------------------------------------------
    def set_model(self, name: str, version: str, low_confidence_below: float | None = None) -> None:
        self._model_text = f"Model: {name} {version}"
        self._low_conf_threshold = low_confidence_below
        self.model_line.setText(self._model_text)

    def set_model_error(self, message: str) -> None:
        self._model_text = "Model: not available"
        self.model_line.setText(self._model_text)

    # -- states ----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.low_confidence.hide()
        self.error_box.hide()
        self.bars.set_probabilities({})
        self.bars.hide()  # empty bars read like "all zero": only shown with a result
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
        if pred.low_confidence:
            self.headline.setText(pred.headline)
            self.headline.setProperty("state", "uncertain")
            self._set_sub(f"highest probability {p:.2f}")
            limit = f", below {self._low_conf_threshold:.2f}" if self._low_conf_threshold else ""
            self.low_confidence.setText(
                f"Low confidence: no class clearly wins (top probability {p:.2f}{limit}). "
                "Rely on your own reading of the image."
            )
            self.low_confidence.show()
        else:
            self.headline.setText(pred.headline)
            self.headline.setProperty("state", "result")
            self._set_sub("Model probability, calibrated on validation data; not a risk estimate.")
        self._repolish(self.headline)
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
        self._size_values["area"].setText(f"{_fmt(m.area)} {m.area_unit}")
        self._size_values["longest"].setText(f"{_fmt(m.longest_diameter)} {m.unit}")
        self._size_values["perpendicular"].setText(f"{_fmt(m.perpendicular_diameter)} {m.unit}")
        self._size_values["dw"].setText(
            f"{m.depth_to_width:.2f}" + ("  (taller than wide)" if m.taller_than_wide else "")
        )
        if m.spacing_source == USER_CALIBRATED:
            self.size_note.setText("Pixel size user calibrated (a line drawn over the depth scale; "
                                   "Tools \u203a Calibrate pixel size). Largest outlined region only.")
        elif m.calibrated:
            self.size_note.setText(f"Pixel size from {m.spacing_source}. Largest outlined region only.")
        else:
            self.size_note.setText("No pixel size in this file, so sizes are in pixels. Largest outlined region only.")

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
