"""The reader's assessment in the side panel: accept / reject the AI result, BI-RADS, comment, name.

``ReaderPanel`` is the form; ``ReaderController`` fills it for the image (and frame) shown from
the ``AssessmentStore``, and on "Record" checks it (``ReaderAssessment`` says what is missing),
stores it under the image's sha256, and appends a ``reader_assessment`` record to the audit log.
The reader's name is remembered in the settings. The section is titled and framed apart from the
model's output so the two are never mistaken for each other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from busapp.core.reader import (
    AI_ACCEPTED,
    AI_REJECTED,
    BIRADS_CATEGORIES,
    BIRADS_MEANING,
    AssessmentError,
    AssessmentStore,
    ReaderAssessment,
    record_assessment,
)
from busapp.gui.descriptors_panel import DescriptorsPanel
from busapp.gui.identity_strip import IdentityStrip
from busapp.gui.outline_edit import add_side_section

if TYPE_CHECKING:
    from busapp.core.patient_identity import PatientIdentity
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

log = logging.getLogger(__name__)

READER_NAME_KEY = "reader/name"


class ReaderPanel(QFrame):
    """The form. ``record_requested`` when the reader presses Record."""

    record_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readerPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 8, 16, 10)
        lay.setSpacing(6)
        title = QLabel("READER'S ASSESSMENT")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        sub = QLabel("Your reading, recorded apart from the model's output.")
        sub.setObjectName("note")
        sub.setWordWrap(True)
        lay.addWidget(sub)

        seg = QHBoxLayout()
        seg.setSpacing(0)
        self.ai_group = QButtonGroup(self)
        self.ai_group.setExclusive(False)  # a second click on the checked one un-checks it
        self.accept_button = QPushButton("Accept AI result")
        self.reject_button = QPushButton("Reject AI result")
        for i, (b, pos) in enumerate(((self.accept_button, "first"), (self.reject_button, "last"))):
            b.setCheckable(True)
            b.setObjectName("segment")
            b.setProperty("position", pos)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self.ai_group.addButton(b, i)
            seg.addWidget(b)
        self.accept_button.toggled.connect(lambda on: on and self.reject_button.setChecked(False))
        self.reject_button.toggled.connect(lambda on: on and self.accept_button.setChecked(False))
        lay.addLayout(seg)

        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(5)
        self.birads = QComboBox()
        self.birads.addItem("\u2013 not given", None)
        for c in BIRADS_CATEGORIES:
            self.birads.addItem(f"{c}  {BIRADS_MEANING[c]}", c)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Your name")
        self.name_edit.setMaxLength(80)
        for row, (label, w) in enumerate((("BI-RADS", self.birads), ("Reader", self.name_edit))):
            lab = QLabel(label)
            lab.setObjectName("secondary")
            grid.addWidget(lab, row, 0)
            grid.addWidget(w, row, 1)
            w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        grid.setColumnStretch(1, 1)
        lay.addLayout(grid)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Comment (optional)")
        self.comment.setFixedHeight(54)
        self.comment.setTabChangesFocus(True)
        lay.addWidget(self.comment)
        row = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("note")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.record_button = QPushButton("Record")
        self.record_button.setToolTip("Save your assessment with the image's SHA-256 and in the audit log")
        self.record_button.clicked.connect(self.record_requested)
        row.addWidget(self.status, 1)
        row.addWidget(self.record_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(row)
        for lab in self.findChildren(QLabel):
            lab.setIndent(0)

    # -- state -----------------------------------------------------------------------------------
    def ai_result(self) -> str | None:
        if self.accept_button.isChecked():
            return AI_ACCEPTED
        if self.reject_button.isChecked():
            return AI_REJECTED
        return None

    def set_form(self, a: ReaderAssessment | None) -> None:
        self.accept_button.setChecked(a is not None and a.ai_result == AI_ACCEPTED)
        self.reject_button.setChecked(a is not None and a.ai_result == AI_REJECTED)
        i = self.birads.findData(a.birads) if a is not None and a.birads else 0
        self.birads.setCurrentIndex(max(0, i))
        self.comment.setPlainText(a.comment if a is not None else "")
        if a is not None:
            self.status.setText(f"Recorded by {a.reader}, {a.assessed_at.replace('T', ' ')[:16]} UTC.")
            self.status.setProperty("state", "recorded")
        else:
            self.status.setText("Not assessed yet.")
            self.status.setProperty("state", "")

    def set_error(self, message: str) -> None:
        self.status.setText(message)
        self.status.setProperty("state", "error")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def set_enabled_for_image(self, on: bool) -> None:
        for w in (self.accept_button, self.reject_button, self.birads, self.comment, self.record_button):
            w.setEnabled(on)
        if not on:
            self.set_form(None)
            self.status.setText("Open an analysed image to record your assessment.")


class ReaderController(QObject):
    """Wires the panel to the window: which image, the store, the audit log, the reader's name."""

    recorded = Signal(object)  # ReaderAssessment

    def __init__(self, window: MainWindow, store: AssessmentStore | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store = store if store is not None else AssessmentStore()
        self.panel = ReaderPanel()
        self.panel.name_edit.setText(str(window.settings.q.value(READER_NAME_KEY, "") or ""))
        self.panel.name_edit.editingFinished.connect(self._remember_name)
        self.panel.record_requested.connect(self.record)
        self.descriptors_panel = DescriptorsPanel()
        self._descriptors: tuple[Any, list] | None = None  # (analysis, its descriptors): the last computed
        self._describing: tuple[tuple[int, int], Any] | None = None  # ((job, frame), analysis) on the worker
        self._descriptors_key: tuple[int, int] | None = None  # whose descriptors the panel shows
        add_side_section(window, self.descriptors_panel)
        add_side_section(window, self.panel)
        self.identity_strip = IdentityStrip()
        body = getattr(window, "side_body", None)
        if body is not None:
            body.insertWidget(0, self.identity_strip)  # above the model's output: whose image first
        self._identities: dict[int, PatientIdentity | None] = {}
        window.shown_changed.connect(self._on_shown)
        self._on_shown(None)

    def reader_name(self) -> str:
        return " ".join(self.panel.name_edit.text().split())

    @Slot()
    def _remember_name(self) -> None:
        self.window.settings.q.setValue(READER_NAME_KEY, self.reader_name())

    def assessment(self, rec: ImageRecord | None = None) -> ReaderAssessment | None:
        """The stored assessment of the shown frame of ``rec`` (default: the current record)."""
        rec = rec if rec is not None else self.window.current_record()
        if rec is None or rec.sha256 is None:
            return None
        return self.store.get(rec.sha256, rec.frame)

    def identity(self, rec: ImageRecord | None = None) -> PatientIdentity | None:
        """Patient and study identity of ``rec``'s file (DICOM header), read once per opened file."""
        rec = rec if rec is not None else self.window.current_record()
        if rec is None or rec.loaded is None:
            return None
        if rec.job_id not in self._identities:
            ident = None
            if rec.loaded.source_format == "DICOM":
                from busapp.core.patient_identity import read_identity

                ident = read_identity(rec.path)
            self._identities[rec.job_id] = ident
        return self._identities[rec.job_id]

    @Slot(object)
    def _on_shown(self, rec: ImageRecord | None) -> None:
        li = rec.loaded if rec is not None else None
        self.identity_strip.set_identity(self.identity(rec) if li is not None else None,
                                         li.source_format if li is not None else None)
        self._show_descriptors(rec)
        ok = rec is not None and rec.analysis is not None and rec.sha256 is not None
        self.panel.set_enabled_for_image(ok)
        if ok:
            self.panel.set_form(self.assessment(rec))

    def _show_descriptors(self, rec: ImageRecord | None) -> None:
        """Shown from the cache, else worked out on the worker after the result is on screen (12 ms
        of a next image's 80 were these on the GUI thread); an edited outline of the same image
        keeps its old values until the new ones arrive, so a brush stroke does not flicker."""
        if rec is None or rec.analysis is None or rec.decoded is None:
            self._describing = None
            self.descriptors_panel.set_descriptors(None)
            return
        a, key = rec.analysis, (rec.job_id, rec.frame)
        if self._descriptors is not None and self._descriptors[0] is a:
            self._describing = None
            self._put_descriptors(rec, self._descriptors[1])
            return
        if self._describing is not None and self._describing[1] is a:
            return  # already on its way
        if self._descriptors_key != key:
            self.descriptors_panel.set_pending()
        self._describing = (key, a)
        task = self.window.worker_thread.describe(a, rec.decoded.pixels)
        self.window.watch(task, on_result=lambda found: self._described(rec, a, found),
                          on_error=lambda e: self._described(rec, a, [], e))

    def _described(self, rec: ImageRecord, a: Any, found: list, error: BaseException | None = None) -> None:
        if error is not None:  # a descriptor must never take the result down with it
            log.error("descriptors failed: %s", type(error).__name__)
        self._descriptors = (a, found)
        if self._describing is not None and self._describing[1] is a:
            self._describing = None
        if self.window.current_record() is rec and rec.analysis is a:
            self._put_descriptors(rec, found)

    def _put_descriptors(self, rec: ImageRecord, found: list) -> None:
        edit = getattr(self.window, "outline_edit", None)
        self._descriptors_key = (rec.job_id, rec.frame)
        self.descriptors_panel.set_descriptors(found, bool(edit is not None and edit.is_edited(rec)))

    @Slot()
    def record(self) -> ReaderAssessment | None:
        rec = self.window.current_record()
        if rec is None or rec.analysis is None or rec.sha256 is None:
            return None
        edit = getattr(self.window, "outline_edit", None)
        try:
            a = ReaderAssessment(
                reader=self.reader_name(),
                ai_result=self.panel.ai_result(),
                birads=self.panel.birads.currentData(),
                comment=self.panel.comment.toPlainText(),
                outline_edited=bool(edit is not None and edit.is_edited(rec)),
                frame=rec.frame,
            )
        except AssessmentError as e:
            self.panel.set_error(str(e))
            return None
        self._remember_name()
        p = rec.analysis.prediction
        try:
            self.store.put(rec.sha256, a)
            record_assessment(self.window.audit, rec.sha256, a, {"name": p.model_name, "version": p.model_version})
        except Exception as e:  # a full disk: say so, keep the form as typed
            log.error("reader assessment could not be saved: %s", e)
            self.panel.set_error(f"The assessment could not be saved: {e}")
            return None
        self.panel.set_form(a)
        self.window.statusBar().showMessage(f"Assessment recorded by {a.reader}.", 6000)
        self.recorded.emit(a)
        return a
