"""File > Export to DICOM (PACS): the report as Encapsulated PDF and the overlay as Secondary
Capture, in the source image's study (``core.dicom_export``). For an image that is not DICOM the
action says what is missing instead of writing anything.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from busapp.gui.exports import report_context

if TYPE_CHECKING:
    from busapp.core.dicom_export import DicomExport
    from busapp.gui.main_window import MainWindow

log = logging.getLogger(__name__)
EXPORT_DICOM = "export_dicom"  # audit action (busapp.core.audit.AuditLog.record)


def qimage_rgb(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return a[:, : img.width() * 3].reshape(img.height(), img.width(), 3).copy()


class DicomExportController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = window.make_action("Export to &DICOM (PACS)\u2026", self.export, [],
                                         "The report (Encapsulated PDF) and the overlay (Secondary Capture) "
                                         "as DICOM files in the source image's study")
        window.file_menu.insertAction(window.file_export_separator, self.action)
        window.shown_changed.connect(self.update_action)
        self.update_action(None)

    @Slot(object)
    def update_action(self, _rec: object = None) -> None:
        rec = self.window.current_record()
        self.action.setEnabled(rec is not None and rec.analysis is not None and rec.loaded is not None
                               and rec.sha256 is not None)

    def _message(self, title: str, text: str) -> None:
        QMessageBox.information(self.window, title, text)

    @Slot()
    def export(self, folder: Path | None = None) -> DicomExport | None:
        from busapp.core.dicom_export import DicomExportError, missing_for_dicom_export, write_dicom_exports
        from busapp.report.pdf import build_report_data, report_pdf_bytes
        from busapp.report.render import render_overlay

        w = self.window
        rec = w.current_record()
        a = rec.analysis if rec is not None else None
        if rec is None or a is None or rec.loaded is None or rec.sha256 is None:
            return None
        if rec.loaded.source_format != "DICOM":
            self._message("Export to DICOM", missing_for_dicom_export(rec.path))
            return None
        if folder is None:
            start = w.settings.last_export_folder or str(rec.path.parent)
            chosen = QFileDialog.getExistingDirectory(w, "Export to DICOM: choose a folder", start)
            if not chosen:
                return None
            folder = Path(chosen)
        info = w.model_info
        try:
            d = build_report_data(rec.loaded, a.prediction, a.measurements, info.card if info else {},
                                  a.frame_index, rec.sha256, **report_context(w, rec))
            pixels = rec.decoded.pixels if rec.decoded is not None else rec.loaded.frame(a.frame_index)
            overlay = qimage_rgb(render_overlay(pixels, a.prediction.mask, a.measurements,
                                                reader_lines=d.reader_lines(),
                                                note="Outline edited by reader" if d.outline_edited else None))
            out = write_dicom_exports(rec.path, report_pdf_bytes(d), overlay, folder, rec.sha256,
                                      protected=tuple(r.path for r in w.records()), measurements=a.measurements)
        except (DicomExportError, OSError) as e:
            log.error("DICOM export failed: %s", type(e).__name__)
            self._message("Export to DICOM failed", str(e))
            return None
        w.settings.last_export_folder = str(folder)
        try:
            p = a.prediction
            w.audit.record(EXPORT_DICOM, sha256=rec.sha256, model={"name": p.model_name, "version": p.model_version},
                           outputs={"label": p.label}, details={"format": "dicom", "frame": a.frame_index,
                                                                "objects": ["encapsulated pdf", "secondary capture"]
                                                                + (["measurement sr"] if out.measurements else [])})
        except Exception as e:  # the files are written; say that the log is not
            log.error("audit log write failed: %s", e)
            self._message("Audit log", f"The DICOM files were saved, but the audit log could not be written:\n{e}")
        note = (" " + " ".join(out.notes)) if out.notes else ""
        names = [out.report.name, out.overlay.name] + ([out.measurements.name] if out.measurements else [])
        w.statusBar().showMessage(f"Saved {', '.join(names[:-1])} and {names[-1]}.{note}", 10000)
        return out
