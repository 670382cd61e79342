"""BI-RADS descriptors of the outline shown (``core.descriptors``), in the side panel.

Only the descriptors that agreed well enough with radiologists are shown, each with how it was
derived (tooltip) and how well it agrees (note); the others are named with their agreement, so
that their absence is explained. They follow the outline: an edit by the reader re-derives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from busapp.core.descriptors import Descriptor


class DescriptorsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("descriptorsPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 10)
        lay.setSpacing(4)
        self.title = QLabel("BI-RADS DESCRIPTORS")
        self.title.setObjectName("sectionTitle")
        lay.addWidget(self.title)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(12)
        self.grid.setVerticalSpacing(3)
        self.grid.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.grid)
        self.note = QLabel()
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        for lab in (self.title, self.note):
            lab.setIndent(0)
        self._values: dict[str, QLabel] = {}
        self.set_descriptors(None)

    def _clear(self) -> None:
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self._values = {}

    def set_pending(self) -> None:
        """A new image's descriptors are being worked out (a few milliseconds, off the GUI thread)."""
        self._clear()
        self.show()
        self.note.setText("Describing the outline\u2026")

    def set_descriptors(self, descriptors: list[Descriptor] | None, edited: bool = False) -> None:
        """``None``: no outline (section hidden); else every descriptor, of which the validated are shown."""
        self._clear()
        if not descriptors:
            self.setVisible(descriptors is not None)
            self.note.setText("No outline, so no descriptors." if descriptors is not None else "")
            return
        self.show()
        shown = [d for d in descriptors if d.shown]
        hidden = [d for d in descriptors if not d.shown]
        for row, d in enumerate(shown):
            name = QLabel(d.label)
            name.setObjectName("secondary")
            value = QLabel(d.value)
            value.setObjectName("value")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tip = f"{d.label}: {d.how}.\n{d.agreement_text().capitalize()}."
            for w in (name, value):
                w.setToolTip(tip)
                w.setIndent(0)
            self.grid.addWidget(name, row, 0)
            self.grid.addWidget(value, row, 1)
            self._values[d.key] = value
        parts = [f"Derived by fixed rules from the {'reader-edited ' if edited else ''}outline and the image."]
        agreed = [d for d in shown if d.agreement is not None]
        if agreed:
            parts.append("Agreement with radiologists on held-out lesions: " + "; ".join(
                f"{d.label.lower()} kappa {d.agreement[0]:.2f} ({d.agreement[1] * 100:.0f} %)" for d in agreed) + ".")
        if any(d.key == "orientation" for d in shown):
            parts.append("Orientation is BI-RADS's geometric definition (taller than wide or not).")
        if hidden:
            parts.append("Not shown, too little agreement: " + "; ".join(
                f"{d.label.lower()} (kappa {d.agreement[0]:.2f})" if d.agreement else d.label.lower()
                for d in hidden) + ".")
        self.note.setText(" ".join(parts))

    def values(self) -> dict[str, str]:
        return {k: v.text() for k, v in self._values.items()}


def descriptors_for(analysis: Any, pixels: Any) -> list[Descriptor]:
    """Descriptors of an analysis's outline on its pixels (an empty list without an outline)."""
    from busapp.core.descriptors import describe

    mask = analysis.prediction.mask
    if pixels is None or mask is None or not mask.any() or mask.shape != pixels.shape[:2]:
        return []
    return describe(pixels, mask)
