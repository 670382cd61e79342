"""The reader corrects the lesion outline: tools, menu and side-panel controls, wired to the window.

``OutlineEditController`` keeps one ``MaskEditor`` per (image, frame) and, after every stroke,
polygon, undo or redo, measures the edited mask with the same ``measure_image`` the model's mask
goes through, and puts an edited copy of the analysis in the record (the prediction's mask
replaced, measurements and overlay redrawn). So the panel, calipers, exports and report all follow
the edit at once, while the model's own analysis is kept here for "Reset to model outline". The
edit is saved under the image's sha256 (``OutlineEditStore``) and restored when the image is
analysed again; "Edited by reader" is shown on the viewer and beside the measurements.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from busapp.gui.mask_edit import MaskEditor, OutlineEditStore

if TYPE_CHECKING:
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

log = logging.getLogger(__name__)

EDITED_BY_READER = "Edited by reader"
TOOL_LABELS = (("", "Pan", "V"), ("brush", "Brush", "B"), ("eraser", "Eraser", "E"), ("polygon", "Polygon", "P"))
DEFAULT_BRUSH_FRACTION = 0.012  # of the image's larger side, as a starting radius


class OutlineEditControls(QWidget):
    """Side-panel section: tool buttons, brush size, undo / redo / reset, edited state."""

    tool_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outlineEditControls")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 10)
        lay.setSpacing(6)
        title = QLabel("EDIT OUTLINE")
        title.setObjectName("sectionTitle")
        title.setIndent(0)
        lay.addWidget(title)
        seg = QHBoxLayout()
        seg.setSpacing(0)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.tool_buttons: dict[str, QPushButton] = {}
        for i, (tool, label, key) in enumerate(TOOL_LABELS):
            b = QPushButton(label)
            b.setCheckable(True)
            b.setObjectName("segment")
            b.setToolTip(f"{label} ({key})")
            b.setProperty("position", "first" if i == 0 else ("last" if i == len(TOOL_LABELS) - 1 else "middle"))
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # never widen the panel
            self.group.addButton(b, i)
            self.tool_buttons[tool] = b
            seg.addWidget(b)
        self.tool_buttons[""].setChecked(True)
        self.group.idClicked.connect(lambda i: self.tool_chosen.emit(TOOL_LABELS[i][0]))
        lay.addLayout(seg)
        self.brush_label = QLabel()
        self.brush_label.setObjectName("secondary")
        self.brush_label.setIndent(0)
        self.brush_label.setWordWrap(True)  # never widen the side panel
        lay.addWidget(self.brush_label)
        row = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the model's outline")
        for b in (self.undo_button, self.redo_button, self.reset_button):
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            row.addWidget(b)
        lay.addLayout(row)
        self.state_label = QLabel()
        self.state_label.setObjectName("note")
        self.state_label.setWordWrap(True)
        self.state_label.setIndent(0)
        lay.addWidget(self.state_label)
        self.set_brush(8.0)

    def set_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)

    def set_brush(self, radius: float) -> None:
        self.brush_label.setText(f"Brush diameter {2 * radius:.0f} px  ([ smaller, ] larger)")


class OutlineEditController(QObject):
    """Owns the editors and the edit actions of a MainWindow."""

    edited = Signal(object)  # ImageRecord whose shown outline the reader changed

    def __init__(self, window: MainWindow, store: OutlineEditStore | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store = store if store is not None else OutlineEditStore()
        self._editors: dict[tuple[int, int], MaskEditor] = {}
        self._model: dict[tuple[int, int], Any] = {}  # the model's own analysis per (job, frame)
        self._edited: dict[tuple[int, int], Any] = {}  # the analysis with the reader's outline
        viewer = window.viewer
        self.controls = OutlineEditControls()
        self._build_actions()
        add_side_section(window, self.controls)
        viewer.mask_edited.connect(self._on_mask_edited)
        viewer.brush_changed.connect(self.controls.set_brush)
        viewer.edit_tool_changed.connect(self._on_tool_changed)
        self.controls.tool_chosen.connect(self.set_tool)
        self.controls.undo_button.clicked.connect(self.undo)
        self.controls.redo_button.clicked.connect(self.redo)
        self.controls.reset_button.clicked.connect(self.reset_to_model)
        window.shown_changed.connect(self._on_shown)
        window.result_ready.connect(self._on_result)
        self._on_shown(None)

    # -- construction ----------------------------------------------------------------------------
    def _build_actions(self) -> None:
        w = self.window
        A = w.make_action
        self.menu = QMenu("&Edit", w)
        w.menuBar().insertMenu(w.view_menu.menuAction(), self.menu)
        self.undo_action = A("&Undo outline edit", self.undo, [QKeySequence.StandardKey.Undo])
        self.redo_action = A("&Redo outline edit", self.redo, [QKeySequence.StandardKey.Redo, "Ctrl+Y"])
        self.menu.addAction(self.undo_action)
        self.menu.addAction(self.redo_action)
        self.menu.addSeparator()
        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for tool, label, key in TOOL_LABELS:
            text = {"": "&Pan (no edit tool)", "polygon": "Po&lygon / lasso"}.get(tool, f"&{label}")
            a = A(text, lambda *_, t=tool: self.set_tool(t), [key],
                  "Drag to pan" if not tool else f"{label} on the outline ({key})")
            a.setCheckable(True)
            self.tool_group.addAction(a)
            self.tool_actions[tool] = a
            self.menu.addAction(a)
        self.tool_actions[""].setChecked(True)
        self.smaller_action = A("Brush &smaller", lambda: self._scale_brush(-1), ["["])
        self.larger_action = A("Brush &larger", lambda: self._scale_brush(1), ["]"])
        self.menu.addAction(self.smaller_action)
        self.menu.addAction(self.larger_action)
        self.menu.addSeparator()
        self.reset_action = A("Reset to the &model's outline", self.reset_to_model, [])
        self.clear_action = A("&Clear the outline", self.clear_outline, [])
        self.menu.addAction(self.reset_action)
        self.menu.addAction(self.clear_action)

    # -- public API ------------------------------------------------------------------------------
    def editor(self, rec: ImageRecord | None = None) -> MaskEditor | None:
        """The editor of the shown frame of ``rec`` (default: the current record), made on first use."""
        rec = rec if rec is not None else self.window.current_record()
        if rec is None or rec.analysis is None or rec.loaded is None:
            return None
        key = (rec.job_id, rec.frame)
        self._note_model_analysis(rec, rec.frame)
        ed = self._editors.get(key)
        if ed is None:
            model = self._model.get(key)
            if model is None:
                return None
            ed = self._editors[key] = MaskEditor(model.prediction.mask)
        return ed

    def is_edited(self, rec: ImageRecord | None, frame: int | None = None) -> bool:
        if rec is None:
            return False
        key = (rec.job_id, rec.frame if frame is None else frame)
        ed = self._editors.get(key)
        return ed is not None and ed.edited

    def model_analysis(self, rec: ImageRecord) -> Any:
        """The model's own analysis of the shown frame (before any edit)."""
        self._note_model_analysis(rec, rec.frame)
        return self._model.get((rec.job_id, rec.frame))

    @Slot(str)
    def set_tool(self, tool: str) -> None:
        v = self.window.viewer
        if tool:
            ed = self.editor()
            if ed is None:
                self.window.statusBar().showMessage("There is no analysed image to outline.", 5000)
                tool = ""
            else:
                v.set_mask_editor(ed)
                if not v.overlay_visible():
                    self.window.overlay_controls.set_overlay_visible(True)
                if self.window.overlay_controls.opacity() == 0:
                    self.window.overlay_controls.set_opacity(0.5)
        v.set_edit_tool(tool)
        self._on_tool_changed(v.edit_tool())

    @Slot()
    def undo(self) -> None:
        ed = self._current_editor()
        if ed is not None and ed.undo():
            self._apply(self.window.current_record())

    @Slot()
    def redo(self) -> None:
        ed = self._current_editor()
        if ed is not None and ed.redo():
            self._apply(self.window.current_record())

    @Slot()
    def reset_to_model(self) -> None:
        ed = self._current_editor()
        if ed is not None and ed.reset_to_model():
            self._apply(self.window.current_record())

    @Slot()
    def clear_outline(self) -> None:
        ed = self._current_editor()
        if ed is not None and ed.clear():
            self._apply(self.window.current_record())

    # -- internals -------------------------------------------------------------------------------
    def _current_editor(self) -> MaskEditor | None:
        return self.editor(self.window.current_record())

    def _scale_brush(self, direction: int) -> None:
        v = self.window.viewer
        from busapp.gui.viewer import BRUSH_STEP

        v.set_brush_radius(v.brush_radius() * (BRUSH_STEP if direction > 0 else 1 / BRUSH_STEP))

    @Slot(str)
    def _on_tool_changed(self, tool: str) -> None:
        key = tool if tool in self.tool_actions else ""  # the caliper is the calipers section's tool
        self.controls.set_tool(key)
        self.tool_actions[key].setChecked(True)

    def _note_model_analysis(self, rec: ImageRecord, frame: int) -> None:
        """Remember a new model analysis of (rec, frame); restore a stored edit onto it."""
        st = rec.frames.get(frame)
        a = st.analysis if st is not None else None
        key = (rec.job_id, frame)
        if a is None or a is self._model.get(key) or a is self._edited.get(key):
            return
        self._model[key] = a
        self._editors.pop(key, None)
        self._edited.pop(key, None)
        if rec.sha256 is None:
            return
        stored = self.store.get(rec.sha256, frame)
        if stored is None or stored.mask.shape != a.prediction.mask.shape:
            return
        ed = self._editors[key] = MaskEditor(a.prediction.mask, start=stored.mask)
        if ed.edited:
            self._replace(rec, frame, ed, save=False)

    @Slot(object)
    def _on_result(self, rec: ImageRecord) -> None:
        restored = False
        for frame in list(rec.frames):
            before = self._edited.get((rec.job_id, frame))
            self._note_model_analysis(rec, frame)
            restored |= self._edited.get((rec.job_id, frame)) is not before and frame == rec.frame
        if restored and rec is self.window.current_record():
            self.window.refresh_current()

    @Slot(object)
    def _on_shown(self, rec: ImageRecord | None) -> None:
        v = self.window.viewer
        ed = None
        if rec is not None and rec.analysis is not None:
            before = self._edited.get((rec.job_id, rec.frame))
            self._note_model_analysis(rec, rec.frame)
            if self._edited.get((rec.job_id, rec.frame)) is not before:
                self.window.refresh_current()  # a stored edit was just restored: show it
                return
            ed = self.editor(rec)
        v.set_mask_editor(ed)
        if ed is None and v.edit_tool():
            v.set_edit_tool("")
        if ed is not None and rec is not None and rec.decoded is not None:
            h, w = ed.shape
            if not getattr(self, "_brush_set", False):
                v.set_brush_radius(max(2.0, DEFAULT_BRUSH_FRACTION * max(h, w)))
                self._brush_set = True
        edited = ed is not None and ed.edited
        v.set_edited_badge(f"Outline {EDITED_BY_READER.lower()}" if edited else "")
        self._mark_panel(edited)
        self._update_actions(ed)

    def _update_actions(self, ed: MaskEditor | None) -> None:
        on = ed is not None
        for a in self.tool_actions.values():
            a.setEnabled(on or a is self.tool_actions[""])
        for b in self.controls.tool_buttons.values():
            b.setEnabled(on)
        self.undo_action.setEnabled(on and ed.can_undo())
        self.redo_action.setEnabled(on and ed.can_redo())
        self.controls.undo_button.setEnabled(self.undo_action.isEnabled())
        self.controls.redo_button.setEnabled(self.redo_action.isEnabled())
        edited = on and ed.edited
        self.reset_action.setEnabled(edited)
        self.controls.reset_button.setEnabled(edited)
        self.clear_action.setEnabled(on and bool(ed.mask.any()))
        for a in (self.smaller_action, self.larger_action):
            a.setEnabled(on)
        if not on:
            self.controls.state_label.setText("Open an analysed image to correct its outline.")
        elif edited:
            self.controls.state_label.setText(
                f"{EDITED_BY_READER}: measurements are of this outline. Saved with the image's "
                "SHA-256, restored when it is opened again.")
        elif not ed.model_mask.any():
            self.controls.state_label.setText("The model outlined nothing: draw one with Brush or Polygon.")
        else:
            self.controls.state_label.setText("Model's outline. Brush, Eraser or Polygon to correct it.")

    def _mark_panel(self, edited: bool) -> None:
        """Say beside the measurements that they are of the reader's outline."""
        panel = self.window.panel
        title = getattr(panel, "size_title", None)
        note = getattr(panel, "size_note", None)
        if not edited or title is None:
            return
        title.setText(f"{title.text()} \u00b7 {EDITED_BY_READER.upper()}")
        if note is not None:
            text = note.text()
            if text.startswith("The model outlined no region"):
                text = "The reader removed the outline."
            note.setText(f"Outline edited by the reader; measurements are of the edited outline. {text}")

    @Slot()
    def _on_mask_edited(self) -> None:
        self._apply(self.window.current_record())

    def _apply(self, rec: ImageRecord | None) -> None:
        """The editor of the shown frame changed: new measurements, record, store, display."""
        if rec is None:
            return
        ed = self._editors.get((rec.job_id, rec.frame))
        if ed is None:
            return
        self._replace(rec, rec.frame, ed, save=True)
        self.window.refresh_current()
        self.edited.emit(rec)

    def _replace(self, rec: ImageRecord, frame: int, ed: MaskEditor, save: bool) -> None:
        key = (rec.job_id, frame)
        model = self._model[key]
        st = rec.state(frame)
        if not ed.edited:
            st.analysis = model
            self._edited.pop(key, None)
            if save and rec.sha256:
                self._store(lambda: self.store.remove(rec.sha256, frame))
            return
        st.analysis = self._edited[key] = edited_analysis(model, ed.mask.copy(), rec, self._calibrations())
        if save and rec.sha256:
            p = model.prediction
            reader = self.window.settings.q.value("reader/name", "") or None
            self._store(lambda: self.store.put(rec.sha256, frame, ed.mask, reader=str(reader) if reader else None,
                                               model={"name": p.model_name, "version": p.model_version}))

    def _store(self, write) -> None:
        try:
            write()
        except OSError as e:  # the edit stays on screen; say that it is not saved
            log.error("outline edit could not be saved: %s", e)
            self.window.statusBar().showMessage(f"The edited outline could not be saved: {e}", 10000)

    def _calibrations(self) -> Any:
        tools = getattr(self.window, "tools", None)
        return getattr(tools, "calibrations", None)


def add_side_section(window: MainWindow, widget: QWidget) -> None:
    """Append a section (with a rule above it) to the side panel, above its closing stretch."""
    body = getattr(window, "side_body", None)  # the side panel's layout (a main-window seam)
    if body is None:
        return
    rule = QFrame()
    rule.setObjectName("rule")
    rule.setFrameShape(QFrame.Shape.HLine)
    body.insertWidget(body.count() - 1, rule)
    body.insertWidget(body.count() - 1, widget)


def edited_analysis(model: Any, mask: Any, rec: ImageRecord, calibrations: Any = None) -> Any:
    """A copy of the model's analysis with the reader's mask, its measurements and overlay."""
    from PySide6.QtGui import QPainterPath

    from busapp.core.measure import measure_image
    from busapp.gui.viewer import mask_fill_image, mask_outline_path

    prediction = dataclasses.replace(model.prediction, mask=mask, mask_one_region=False)  # the reader may draw several regions
    if mask.any():
        m = measure_image(rec.loaded, mask, rec.sha256, calibrations)
        fill, outline = mask_fill_image(mask), mask_outline_path(mask)
    else:
        m, fill, outline = None, None, QPainterPath()
    return dataclasses.replace(model, prediction=prediction, measurements=m, fill=fill, outline=outline)
