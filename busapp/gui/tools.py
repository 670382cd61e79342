"""File > Batch analysis, Tools > Calibrate pixel size, Help > Audit log: the issue-6 dialogs, wired.

The dialogs themselves live in ``batch_dialog``, ``calibration`` and ``audit_view``; this module
only opens them for the window and applies what they change (a calibration re-measures every
cached frame of the image and refreshes the panel and calipers).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMenu

from busapp.gui.image_list import DONE

if TYPE_CHECKING:
    from busapp.core.measure import CalibrationStore
    from busapp.gui.audit_view import AuditLogDialog
    from busapp.gui.batch_dialog import BatchDialog
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord

USER_CALIBRATED = "user calibrated"  # == busapp.core.measure.USER_CALIBRATED (no numpy at startup)


def can_calibrate(rec: ImageRecord | None) -> bool:
    """An image without a trusted pixel size for its lesion, or one the user calibrated already."""
    if rec is None or rec.loaded is None or rec.decoded is None or rec.sha256 is None or rec.status != DONE:
        return False
    m = rec.analysis.measurements if rec.analysis is not None else None
    if m is not None:
        return m.spacing_source in (None, USER_CALIBRATED)
    return rec.loaded.pixel_spacing_mm is None


class ToolsController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.batch_dialog: BatchDialog | None = None
        self.audit_dialog: AuditLogDialog | None = None
        self._calibrations: CalibrationStore | None = None
        A = window.make_action
        self.batch_action = A("&Batch analysis\u2026", self.open_batch, ["Ctrl+B"],
                              "Analyse every image in a folder into a CSV file, with progress and Cancel")
        window.file_menu.insertSeparator(window.file_export_separator)
        window.file_menu.insertAction(window.file_export_separator, self.batch_action)
        self.calibrate_action = A("&Calibrate pixel size\u2026", self.calibrate, [],
                                  "Draw a line over the depth scale to measure in mm (images without a pixel size)")
        self.tools_menu = QMenu("&Tools", window)
        window.menuBar().insertMenu(window.help_menu.menuAction(), self.tools_menu)
        self.tools_menu.addAction(self.calibrate_action)
        self.validate_dialog: Any = None
        self.validate_action = A("&Validate on my images\u2026", self.open_validate, [],
                                 "Check busapp on your own labelled images: sensitivity, specificity, AUC, verdict")
        self.tools_menu.addAction(self.validate_action)
        self.audit_action = A("&Audit log\u2026", self.open_audit_log, [],
                              "Every analysis and export, by image SHA-256 (no file names)")
        window.help_menu.insertAction(window.help_menu.actions()[0], self.audit_action)
        window.shown_changed.connect(self.update_actions)
        self.update_actions(None)

    @property
    def calibrations(self) -> CalibrationStore:
        if self._calibrations is None:
            from busapp.core.measure import CalibrationStore

            # The store the window's Analyzer reads, so a stored calibration applies on re-analysis.
            self._calibrations = self.window.calibrations or CalibrationStore()
        return self._calibrations

    @Slot(object)
    def update_actions(self, _rec: object = None) -> None:
        self.calibrate_action.setEnabled(can_calibrate(self.window.current_record()))

    # -- batch -------------------------------------------------------------------------------------
    @Slot()
    def open_batch(self) -> None:
        """One non-modal batch dialog; opening it again brings it to the front."""
        if self.batch_dialog is None:
            from busapp.gui.batch_dialog import BatchDialog

            w = self.window
            self.batch_dialog = BatchDialog(w, bundle_dir=w.bundle_dir, audit=w.audit)
            self.batch_dialog.batch_finished.connect(self._on_batch_finished)
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()

    @Slot(object)
    def _on_batch_finished(self, result: Any) -> None:
        self.window.statusBar().showMessage(f"Batch analysis: {result.summary()}", 15000)

    def shutdown(self) -> None:
        """Window closing: cancel a running batch (or validation) and stop its thread."""
        if self.batch_dialog is not None:
            self.batch_dialog.shutdown()
            self.batch_dialog.hide()
        if self.validate_dialog is not None:
            self.validate_dialog.shutdown()
            self.validate_dialog.hide()

    @Slot()
    def open_validate(self) -> None:
        """Tools > Validate on my images (busapp.gui.validate_dialog); one non-modal dialog."""
        if self.validate_dialog is None:
            from busapp.gui.validate_dialog import ValidateDialog

            self.validate_dialog = ValidateDialog(self.window, bundle_dir=self.window.bundle_dir, audit=self.window.audit)
        self.validate_dialog.show()
        self.validate_dialog.raise_()
        self.validate_dialog.activateWindow()

    # -- calibration -------------------------------------------------------------------------------
    @Slot()
    def calibrate(self) -> None:
        rec = self.window.current_record()
        if not can_calibrate(rec):
            return
        from busapp.gui.calibration import CalibrationDialog

        dlg = CalibrationDialog(rec.decoded.pixels, rec.sha256, self.window, store=self.calibrations,
                                audit=self.window.audit)
        dlg.calibrated.connect(self.on_calibrated)
        dlg.removed.connect(self.on_calibration_removed)
        dlg.exec()
        dlg.deleteLater()

    @Slot(float, float)
    def on_calibrated(self, row_mm: float = 0.0, col_mm: float = 0.0) -> None:
        """The dialog stored a calibration for the current image: measure again with it."""
        self.remeasure(self.window.current_record())

    @Slot()
    def on_calibration_removed(self) -> None:
        self.remeasure(self.window.current_record())

    def remeasure(self, rec: ImageRecord | None) -> None:
        """Every cached frame of ``rec`` with the pixel size that now applies (masks are unchanged)."""
        if rec is None or rec.loaded is None:
            return
        from busapp.core.measure import measure_image

        for st in rec.frames.values():
            a = st.analysis
            if a is not None and a.measurements is not None:
                m = measure_image(rec.loaded, a.prediction.mask, rec.sha256, self.calibrations)
                st.analysis = dataclasses.replace(a, measurements=m)
        self.window.refresh_current()

    # -- audit log ---------------------------------------------------------------------------------
    @Slot()
    def open_audit_log(self) -> None:
        from busapp.gui.audit_view import AuditLogDialog

        if self.audit_dialog is None:
            self.audit_dialog = AuditLogDialog(self.window, self.window.audit)
        else:
            self.audit_dialog.reload()
        self.audit_dialog.show()
        self.audit_dialog.raise_()
        self.audit_dialog.activateWindow()
