"""The calipers' side-panel section and controller: the viewer's caliper tool (Tools: Caliper, C),
the reader's lines per image frame (kept in ``core.calipers.CaliperStore``, so reopening the image
brings them back) and the report pair of the outline shown. Geometry and lengths: ``core.calipers``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from busapp.core.calipers import (
    CaliperItem,
    CaliperStore,
    Length,
    Line,
    ReportPair,
    caliper_length,
    line_spacing,
)

if TYPE_CHECKING:
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

log = logging.getLogger(__name__)


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

    def __init__(self, window: MainWindow, store: CaliperStore | None = None) -> None:
        super().__init__(window)
        from busapp.gui.outline_edit import add_side_section

        self.window = window
        self.section = CalipersSection()
        self.store = store if store is not None else CaliperStore()
        self._lines: dict[tuple[int, int], list[Line]] = {}  # read from the store once per opened frame
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
        # After the result is painted, not before: the outline's width/depth take a few ms of a next
        # image's 80 on the GUI thread. One zero-time timer coalesces the shown_changed of one result.
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        window.shown_changed.connect(self._on_shown)
        self._pair_of: tuple[object, ReportPair | None] | None = None  # (mask, its report pair)
        self._drawn_for: tuple[int, int] | None = None  # whose lines the viewer shows
        self.refresh()

    def _on_shown(self, rec: ImageRecord | None) -> None:
        if self._key(rec) != self._drawn_for:  # never an instant of one image's lines on another
            self.window.viewer.set_manual_calipers([])
            self._drawn_for = None
        self._refresh_timer.start()

    def _key(self, rec: ImageRecord | None) -> tuple[int, int] | None:
        return None if rec is None else (rec.job_id, rec.frame)

    def lines(self, rec: ImageRecord | None = None) -> list[Line]:
        """The reader's lines on ``rec``'s shown frame (the stored ones, the first time it is asked)."""
        rec = rec if rec is not None else self.window.current_record()
        k = self._key(rec)
        if k is None:
            return []
        if k not in self._lines and rec.sha256 is not None:
            self._lines[k] = self.store.get(rec.sha256, rec.frame)
        return list(self._lines.get(k, []))

    def _save(self, rec: ImageRecord | None) -> None:
        if rec is None or rec.sha256 is None:
            return
        try:
            self.store.put(rec.sha256, rec.frame, self._lines.get(self._key(rec), []))
        except OSError as e:  # a full disk: the lines stay on screen, and the reader is told
            log.error("calipers could not be saved: %s", e)
            self.window.statusBar().showMessage(f"The calipers could not be saved: {e}", 10000)

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
        rec = self.window.current_record()
        k = self._key(rec)
        if k is not None:
            self._lines[k] = []
            self._save(rec)
        self.refresh()

    @Slot(float, float, float, float)
    def _on_drawn(self, x0: float, y0: float, x1: float, y1: float) -> None:
        rec = self.window.current_record()
        k = self._key(rec)
        if k is None or math.hypot(x1 - x0, y1 - y0) < 2:
            return
        self._lines[k] = [*self.lines(rec), ((x0, y0), (x1, y1))]
        self._save(rec)
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
            self._pair_of = (mask, a.report_pair_of(mask))
        rp = self._pair_of[1]
        if rp is None:
            return None
        return rp, self.measure(rec, rp.width_line), self.measure(rec, rp.depth_line)

    def items(self, rec: ImageRecord | None = None) -> list[CaliperItem]:
        """The outline's report pair, then the reader's lines, measured (panel, PDF, overlay export)."""
        rec = rec if rec is not None else self.window.current_record()
        if rec is None or rec.loaded is None:
            return []
        out: list[CaliperItem] = []
        found = self.pair(rec)
        if found is not None:
            rp, wl, dl = found
            out += [CaliperItem("width", "Width \u2225 skin", "W", rp.width_line, wl),
                    CaliperItem("depth", "Depth \u22a5 skin", "H", rp.depth_line, dl)]
        out += [CaliperItem(f"C{i}", f"Caliper C{i}", f"C{i}", line, self.measure(rec, line))
                for i, line in enumerate(self.lines(rec), 1)]
        return out

    def refresh(self) -> None:
        w = self.window
        rec = w.current_record()
        v = w.viewer
        if rec is None or rec.loaded is None or rec.decoded is None:
            self.section.set_rows([], "Open an image to measure it.")
            v.set_manual_calipers([])
            return
        items = self.items(rec)
        rows = [(it.key, it.label, it.length.text()) for it in items]
        drawn = [(it.line, f"{it.short} {it.length.text()}") for it in items
                 if it.by_reader or self.section.show_pair.isChecked()]
        note = ("Width and depth of the outline parallel and at right angles to the skin (probe at the "
                "top), beside the longest diameter D1 and its perpendicular D2. Drag with Caliper (C) "
                "to measure anything else.")
        if any(r[2].endswith(" px") for r in rows):
            note += " In pixels: no pixel size for that part of the image (Tools \u203a Calibrate)."
        self.section.set_rows(rows, note)
        v.set_manual_calipers(drawn)
        self._drawn_for = self._key(rec)
