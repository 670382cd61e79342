"""Stepping through the frames of a cine loop (multi-frame DICOM, multi-page TIFF).

``FrameControl`` is the bar under the image (slider + spin box, hidden for still images).
``CineController`` turns a frame change into work: a frame already in the record's cache is shown
at once; any other one is requested from the analysis worker, which decodes it lazily off the GUI
thread, analyses it and supersedes unstarted requests for other frames of that image. The slider
is debounced, so dragging it across a long loop queues one request, not one per frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QWidget

from busapp.gui.image_list import ANALYSING, DONE

if TYPE_CHECKING:
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

DEBOUNCE_MS = 120
PREV_KEY, NEXT_KEY = ",", "."  # like many DICOM viewers; arrows stay with image navigation


class FrameControl(QWidget):
    """Frame k of N (1-based for people, 0-based in ``frame_requested``)."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("frameControl")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.setSpacing(8)
        self.label = QLabel("Frame")
        self.label.setObjectName("secondary")
        self.prev_button = QToolButton()
        self.prev_button.setText("\u2039")
        self.prev_button.setToolTip(f"Previous frame ({PREV_KEY})")
        self.next_button = QToolButton()
        self.next_button.setText("\u203a")
        self.next_button.setToolTip(f"Next frame ({NEXT_KEY})")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(1)
        self.slider.setPageStep(10)
        self.slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab should not land here from the list
        self.spin = QSpinBox()
        self.spin.setMinimum(1)
        self.spin.setKeyboardTracking(False)  # typing "12" must not request frame 1 first
        self.spin.setToolTip(f"Frame shown and analysed ({PREV_KEY} and {NEXT_KEY} step)")
        # The loop as a whole, steady while single frames flip around a threshold (issue 25, defect 7).
        self.summary = QLabel()
        self.summary.setObjectName("secondary")
        self.summary.setToolTip("All frames of this loop analysed so far; the panel shows the frame on screen")
        for w in (self.label, self.prev_button, self.slider, self.next_button, self.spin, self.summary):
            lay.addWidget(w, 1 if w is self.slider else 0)
        self.slider.valueChanged.connect(self._on_value)
        self.spin.valueChanged.connect(self._on_value)
        self.prev_button.clicked.connect(self.step_back)
        self.next_button.clicked.connect(self.step_forward)
        self.set_frames(1, 0)

    def set_frames(self, n: int, current: int) -> None:
        """Configure without emitting: the record, not the user, chose this frame."""
        n = max(1, n)
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setMaximum(n)
            w.setValue(current + 1)
            w.blockSignals(False)
        self.spin.setSuffix(f" / {n}")
        self.setVisible(n > 1)

    def frame(self) -> int:
        return self.spin.value() - 1

    def n_frames(self) -> int:
        return self.spin.maximum()

    def set_frame(self, k: int) -> None:
        """Move to frame ``k`` (0-based) as if the user did: emits ``frame_requested``."""
        self.spin.setValue(k + 1)

    @Slot()
    def step_back(self) -> None:
        self.set_frame(self.frame() - 1)

    @Slot()
    def step_forward(self) -> None:
        self.set_frame(self.frame() + 1)

    @Slot(int)
    def _on_value(self, v: int) -> None:
        for w in (self.slider, self.spin):  # keep the two in step without echoing back
            if w.value() != v:
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)
        self.frame_requested.emit(v - 1)


FrameResult = tuple[float, bool, "str | None"]  # p(malignant), low confidence, risk band


def loop_summary(results: dict[int, FrameResult], n_frames: int) -> str:
    """One steady line for a cine: how many frames were analysed, the range and median of
    p(malignant) over them, how many were uncertain, and the risk bands they fell in."""
    if not results:
        return ""
    ps = sorted(p for p, _, _ in results.values())
    n = len(ps)
    median = ps[n // 2] if n % 2 else 0.5 * (ps[n // 2 - 1] + ps[n // 2])
    parts = [f"Loop: {n} of {n_frames} frames analysed",
             f"p(malignant) {ps[0]:.2f}" + (f"\u2013{ps[-1]:.2f}, median {median:.2f}" if n > 1 else "")]
    uncertain = sum(1 for _, low, _ in results.values() if low)
    if uncertain:
        parts.append(f"uncertain in {uncertain}")
    bands: dict[str, int] = {}
    for _, _, band in results.values():
        if band:
            bands[band] = bands.get(band, 0) + 1
    if len(bands) > 1:
        parts.append(", ".join(f"{b} {k}" for b, k in sorted(bands.items(), key=lambda kv: -kv[1])))
    return " \u00b7 ".join(parts)


class CineController(QObject):
    """Connects the frame control and the ``,``/``.`` actions to the window's records and worker."""

    frame_changed = Signal(object)  # ImageRecord whose shown frame changed

    def __init__(self, window: MainWindow, control: FrameControl) -> None:
        super().__init__(window)
        self.window = window
        self.control = control
        self._pending: tuple[int, int] | None = None  # (job, frame) waiting for the debounce
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._apply)
        control.frame_requested.connect(self._on_requested)
        self._results: dict[int, dict[int, FrameResult]] = {}  # job -> frame -> result (outlives the cache)
        window.result_ready.connect(self._on_result)

        self.prev_action = window.make_action("Previous &frame", control.step_back, [PREV_KEY],
                                              f"Show and analyse the previous frame of a cine loop ({PREV_KEY})")
        self.next_action = window.make_action("Next f&rame", control.step_forward, [NEXT_KEY],
                                              f"Show and analyse the next frame of a cine loop ({NEXT_KEY})")
        window.view_menu.addSeparator()
        window.view_menu.addAction(self.prev_action)
        window.view_menu.addAction(self.next_action)
        self.sync(None)

    def sync(self, rec: ImageRecord | None) -> None:
        """Show the control for a loaded multi-frame record, at its frame."""
        n = rec.n_frames if rec is not None and rec.loaded is not None else 1
        if self._pending is not None and (rec is None or rec.job_id != self._pending[0]):
            self._timer.stop()  # another image is shown now: a pending step was meant for the old one
            self._pending = None
        if self._pending is None:  # else the user is still dragging: do not snap back
            self.control.set_frames(n, rec.frame if rec is not None else 0)
        for a in (self.prev_action, self.next_action):
            a.setEnabled(n > 1)
        self.control.summary.setText(loop_summary(self._results.get(rec.job_id, {}), n)
                                     if rec is not None and n > 1 else "")

    @Slot(object)
    def _on_result(self, rec: ImageRecord) -> None:
        """Remember every analysed frame's result for the loop summary (the frame cache is bounded)."""
        if rec.n_frames <= 1:
            return
        seen = self._results.setdefault(rec.job_id, {})
        for k, st in rec.frames.items():
            a = st.analysis
            if a is not None and k not in seen:
                p = float(a.prediction.probabilities.get("malignant", 0.0))
                seen[k] = (p, bool(a.prediction.low_confidence), getattr(getattr(a, "risk", None), "band", None))
        if rec is self.window.current_record():
            self.sync(rec)

    @Slot(int)
    def _on_requested(self, k: int) -> None:
        rec = self.window.current_record()
        if rec is None:
            return
        self._pending = (rec.job_id, k)
        self._timer.start()

    @Slot()
    def _apply(self) -> None:
        if self._pending is None:
            return
        (job, k), self._pending = self._pending, None
        rec = self.window.current_record()
        if rec is not None and rec.job_id == job:
            self.select_frame(k)
        self.sync(self.window.current_record())  # e.g. a frame that could not be chosen: show the real one

    def select_frame(self, k: int) -> None:
        """Show frame ``k`` of the current image: from the cache, or analysed on the worker."""
        w = self.window
        rec = w.current_record()
        if rec is None or rec.loaded is None or rec.status not in (DONE, ANALYSING):
            return
        k = max(0, min(rec.n_frames - 1, k))
        if k == rec.frame:
            return
        rec.frame = k
        st = rec.frames.get(k)
        if st is not None and (st.analysis is not None or st.error is not None):
            w.keep_frame(rec)  # drop an unstarted request for the frame we left
            w.set_record_status(rec, DONE)
        elif st is not None and st.decoded is not None:
            w.keep_frame(rec)  # decoded = started: its result is on the way
            w.set_record_status(rec, ANALYSING)
        else:
            w.request_frame(rec, k)
            w.set_record_status(rec, ANALYSING)
        w.refresh_current()
        self.frame_changed.emit(rec)
