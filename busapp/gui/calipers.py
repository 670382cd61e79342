"""Manual calipers and the report pair (width parallel to the skin, depth at right angles to it).

The reader drags two-point distance lines on the viewer (Tools: Caliper, C); each is measured in mm
where the pixel size for that part of the image is known (the file's own calibrated region, else the
user's calibration), else in pixels. The report pair is what a sonographer writes in a report: the
widest extent of the lesion parallel to the skin (horizontal, probe at the top of the image) and
its depth perpendicular to it (vertical), beside the longest diameter (Feret, D1) and its
perpendicular (D2) that the measurements already give.

The geometry (``report_pair``, ``caliper_length``) is Qt-free; ``CalipersController`` wires the
viewer tool, the side-panel section and the lines per image frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

Point = tuple[float, float]
Line = tuple[Point, Point]


@dataclass(frozen=True)
class Length:
    value: float
    unit: str  # "mm" or "px"
    source: str | None = None  # where the pixel size came from

    def text(self) -> str:
        return f"{self.value:.1f} {self.unit}"


@dataclass(frozen=True)
class ReportPair:
    width_line: Line  # horizontal, at the lesion's widest row, from its left to its right edge
    depth_line: Line  # vertical, at its deepest column, from its top to its bottom edge
    width_px: float
    depth_px: float


def report_pair(mask: np.ndarray) -> ReportPair | None:
    """Widest extent parallel to the skin (horizontal) and depth perpendicular to it (vertical) of
    the largest outlined region, in pixels, with lines to draw (pixel edges, as the measurements)."""
    from busapp.core.measure import largest_component

    m = largest_component(np.asarray(mask, bool))
    if not m.any():
        return None
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    # Draw each line where the lesion is widest / deepest so it lies on the lesion.
    row = int(rows[np.argmax(m[rows].sum(axis=1))]) + 0.5
    col = int(cols[np.argmax(m[:, cols].sum(axis=0))]) + 0.5
    return ReportPair(((float(x0), row), (float(x1), row)), ((col, float(y0)), (col, float(y1))),
                      float(x1 - x0), float(y1 - y0))


def line_spacing(loaded: Any, line: Line, shape: tuple[int, int], sha256: str | None = None,
                 calibrations: Any = None) -> tuple[tuple[float, float] | None, str | None]:
    """The pixel size (row_mm, col_mm) that applies along ``line``, or (None, None): pixels."""
    from busapp.core.measure import resolve_spacing

    h, w = shape
    region = np.zeros(shape, bool)
    for x, y in line:
        region[min(h - 1, max(0, int(y))), min(w - 1, max(0, int(x)))] = True
    return resolve_spacing(loaded, region, sha256, calibrations)


def caliper_length(line: Line, spacing: tuple[float, float] | None, source: str | None = None) -> Length:
    (x0, y0), (x1, y1) = line
    if spacing is None:
        return Length(math.hypot(x1 - x0, y1 - y0), "px")
    row_mm, col_mm = spacing
    return Length(math.hypot((x1 - x0) * col_mm, (y1 - y0) * row_mm), "mm", source)


# --- Qt: side-panel section and controller ------------------------------------------------------


class CalipersSection(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("calipersSection")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 10)
        lay.setSpacing(4)
        title = QLabel("CALIPERS")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(12)
        self.grid.setVerticalSpacing(3)
        lay.addLayout(self.grid)
        self.show_pair = QCheckBox("Show width and depth lines")
        lay.addWidget(self.show_pair)
        row = QHBoxLayout()
        self.tool_button = QPushButton("Draw caliper (C)")
        self.tool_button.setCheckable(True)
        self.clear_button = QPushButton("Clear")
        for b in (self.tool_button, self.clear_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.note = QLabel()
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        for lab in self.findChildren(QLabel):
            lab.setIndent(0)
        self._values: dict[str, QLabel] = {}

    def set_rows(self, rows: list[tuple[str, str, str]], note: str) -> None:
        """(key, label, value) rows; the first two are the report pair, then the manual calipers."""
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self._values = {}
        for i, (key, label, value) in enumerate(rows):
            name, val = QLabel(label), QLabel(value)
            name.setObjectName("secondary")
            val.setObjectName("value")
            val.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for w in (name, val):
                w.setIndent(0)
            self.grid.addWidget(name, i, 0)
            self.grid.addWidget(val, i, 1)
            self._values[key] = val
        self.note.setText(note)

    def values(self) -> dict[str, str]:
        return {k: v.text() for k, v in self._values.items()}


class CalipersController(QObject):
    """Manual calipers per (image, frame), the report pair of the outline shown, the section."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        from busapp.gui.outline_edit import add_side_section

        self.window = window
        self.section = CalipersSection()
        self._lines: dict[tuple[int, int], list[Line]] = {}
        add_side_section(window, self.section)
        v = window.viewer
        v.caliper_drawn.connect(self._on_drawn)
        v.edit_tool_changed.connect(lambda t: self.section.tool_button.setChecked(t == "caliper"))
        self.section.tool_button.clicked.connect(self._on_tool_button)
        self.section.clear_button.clicked.connect(self.clear)
        self.section.show_pair.toggled.connect(lambda _on: self.refresh())
        A = window.make_action
        self.tool_action = A("&Caliper", lambda *_: self.set_tool(True), ["C"],
                             "Drag a distance line on the image (C); Esc ends")
        self.clear_action = A("Clear &calipers", self.clear, [])
        menu = getattr(getattr(window, "outline_edit", None), "menu", None)
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.tool_action)
            menu.addAction(self.clear_action)
        window.shown_changed.connect(lambda _rec: self.refresh())
        self._pair_of: tuple[object, ReportPair | None] | None = None  # (mask, its report pair)
        self.refresh()

    def _key(self, rec: ImageRecord | None) -> tuple[int, int] | None:
        return None if rec is None else (rec.job_id, rec.frame)

    def lines(self, rec: ImageRecord | None = None) -> list[Line]:
        rec = rec if rec is not None else self.window.current_record()
        k = self._key(rec)
        return list(self._lines.get(k, [])) if k else []

    def set_tool(self, on: bool) -> None:
        v = self.window.viewer
        if on and not v.has_image():
            return
        v.set_edit_tool("caliper" if on else "")

    @Slot(bool)
    def _on_tool_button(self, checked: bool) -> None:
        self.set_tool(checked)

    @Slot()
    def clear(self) -> None:
        k = self._key(self.window.current_record())
        if k is not None:
            self._lines.pop(k, None)
        self.refresh()

    @Slot(float, float, float, float)
    def _on_drawn(self, x0: float, y0: float, x1: float, y1: float) -> None:
        k = self._key(self.window.current_record())
        if k is None or math.hypot(x1 - x0, y1 - y0) < 2:
            return
        self._lines.setdefault(k, []).append(((x0, y0), (x1, y1)))
        self.refresh()

    def measure(self, rec: ImageRecord, line: Line) -> Length:
        shape = rec.decoded.pixels.shape[:2] if rec.decoded is not None else (rec.loaded.height, rec.loaded.width)
        tools = getattr(self.window, "tools", None)
        spacing, source = line_spacing(rec.loaded, line, shape, rec.sha256, getattr(tools, "calibrations", None))
        return caliper_length(line, spacing, source)

    def pair(self, rec: ImageRecord) -> tuple[ReportPair, Length, Length] | None:
        a = rec.analysis
        if a is None or rec.loaded is None or a.prediction.mask is None:
            return None
        mask = a.prediction.mask
        if self._pair_of is None or self._pair_of[0] is not mask:  # one outline, one pair: not per repaint
            self._pair_of = (mask, report_pair(mask))
        rp = self._pair_of[1]
        if rp is None:
            return None
        return rp, self.measure(rec, rp.width_line), self.measure(rec, rp.depth_line)

    def refresh(self) -> None:
        w = self.window
        rec = w.current_record()
        v = w.viewer
        if rec is None or rec.loaded is None or rec.decoded is None:
            self.section.set_rows([], "Open an image to measure it.")
            v.set_manual_calipers([])
            return
        rows: list[tuple[str, str, str]] = []
        drawn: list[tuple[Line, str]] = []
        found = self.pair(rec)
        if found is not None:
            rp, wl, dl = found
            rows += [("width", "Width \u2225 skin", wl.text()), ("depth", "Depth \u22a5 skin", dl.text())]
            if self.section.show_pair.isChecked():
                drawn += [(rp.width_line, f"W {wl.text()}"), (rp.depth_line, f"H {dl.text()}")]
        for i, line in enumerate(self.lines(rec), 1):
            length = self.measure(rec, line)
            rows.append((f"C{i}", f"Caliper C{i}", length.text()))
            drawn.append((line, f"C{i} {length.text()}"))
        note = ("Width and depth of the outline parallel and at right angles to the skin (probe at the "
                "top), beside the longest diameter D1 and its perpendicular D2. Drag with Caliper (C) "
                "to measure anything else.")
        if any(r[2].endswith(" px") for r in rows):
            note += " In pixels: no pixel size for that part of the image (Tools \u203a Calibrate)."
        self.section.set_rows(rows, note)
        v.set_manual_calipers(drawn)
