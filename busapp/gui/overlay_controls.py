"""Overlay controls: show/hide (G), fill / outline / both, opacity, calipers.

One compact row under the image (issue 25, defect 9): in the side panel they scrolled out of
sight on a small screen, while the reader changes them while looking at the image.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

MODE_LABELS = (("both", "Fill + outline"), ("fill", "Fill"), ("outline", "Outline"))


class OverlayControls(QWidget):
    visible_changed = Signal(bool)
    mode_changed = Signal(str)
    opacity_changed = Signal(float)
    calipers_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("overlayControls")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.setSpacing(10)

        self.show_box = QCheckBox("Overlay (G)")
        self.show_box.setToolTip("Show the lesion overlay (G)")
        self.show_box.setChecked(True)
        self.show_box.toggled.connect(self.visible_changed)
        lay.addWidget(self.show_box)

        seg = QHBoxLayout()
        seg.setSpacing(0)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[str, QPushButton] = {}
        for i, (mode, label) in enumerate(MODE_LABELS):
            b = QPushButton(label)
            b.setCheckable(True)
            b.setObjectName("segment")
            b.setProperty("position", "first" if i == 0 else ("last" if i == len(MODE_LABELS) - 1 else "middle"))
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            self.mode_group.addButton(b, i)
            self.mode_buttons[mode] = b
            seg.addWidget(b)
        self.mode_buttons["both"].setChecked(True)
        self.mode_group.idToggled.connect(self._on_mode)
        lay.addLayout(seg)

        row = lay
        lab = QLabel("Opacity")
        lab.setObjectName("secondary")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(10)
        self.slider.setValue(50)
        self.slider.setToolTip("Overlay opacity")
        self.value_label = QLabel("50 %")
        self.value_label.setObjectName("value")
        self.value_label.setMinimumWidth(40)
        self.slider.setMinimumWidth(60)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.slider.valueChanged.connect(self._on_slider)
        row.addWidget(lab)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)

        self.calipers_box = QCheckBox("Axes (M)")
        self.calipers_box.setToolTip("Show the measured axes D1 and D2 (M)")
        self.calipers_box.setChecked(True)
        self.calipers_box.toggled.connect(self.calipers_changed)
        lay.addWidget(self.calipers_box)

    @Slot(int, bool)
    def _on_mode(self, idx: int, checked: bool) -> None:
        if checked:
            self.mode_changed.emit(MODE_LABELS[idx][0])

    @Slot(int)
    def _on_slider(self, v: int) -> None:
        self.value_label.setText(f"{v} %")
        self.opacity_changed.emit(v / 100.0)

    # -- programmatic state (restored settings, keyboard shortcuts) ------------------------------
    def set_opacity(self, opacity: float) -> None:
        self.slider.setValue(round(opacity * 100))

    def opacity(self) -> float:
        return self.slider.value() / 100.0

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def mode(self) -> str:
        for mode, b in self.mode_buttons.items():
            if b.isChecked():
                return mode
        return "both"

    def set_overlay_visible(self, on: bool) -> None:
        self.show_box.setChecked(on)

    def set_calipers(self, on: bool) -> None:
        self.calipers_box.setChecked(on)
