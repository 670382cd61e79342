"""File > Export report / mask / overlay for the image (and frame) shown.

Default file names never carry patient identifiers: a raster file's own stem, and for DICOM (whose
file names are often accession numbers or patient IDs) ``busapp-<kind>-<first 8 of sha256>``.
Every export is appended to the audit log (sha256 only). A failed write shows a message box and
leaves the app as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from busapp.core.audit import EXPORT_MASK, EXPORT_OVERLAY, EXPORT_REPORT
from busapp.core.imageio import DICOM_SUFFIXES
from busapp.core.output_paths import describe_os_error  # the one list of extensions busapp reads as DICOM

if TYPE_CHECKING:
    from busapp.gui.main_window import MainWindow
    from busapp.gui.records import ImageRecord
    from busapp.gui.worker import Analysis

log = logging.getLogger(__name__)


def default_file_name(rec: ImageRecord, kind: str, ext: str) -> str:
    """``kind``: "report", "mask", "overlay"; ``ext`` with its dot."""
    li = rec.loaded
    dicom = (li is not None and li.source_format == "DICOM") or rec.path.suffix.lower() in DICOM_SUFFIXES
    if dicom or not rec.path.stem:
        base = f"busapp-{kind}-{(rec.sha256 or 'image')[:8]}"
    else:
        base = f"{rec.path.stem}-{kind}"
    if rec.n_frames > 1:
        base += f"-frame{rec.frame + 1}"
    return base + ext


def export_refusal(path: Path, inputs: list[Path]) -> str | None:
    """Why busapp will not write an export at ``path`` (one sentence), or None: an export never
    replaces an open image, nor any file busapp did not write itself (the same rule as batch and
    ``busapp-cli predict``; busapp knows its own files by the mark inside them)."""
    from busapp.core.output_paths import text_safe, written_by_busapp

    if not path.exists() and not path.is_symlink():
        return None
    if any(_same_file(path, p) for p in inputs):
        why = "is an image open in busapp"
    elif not written_by_busapp(path):
        why = "exists and busapp did not write it"
    else:
        return None  # busapp's own earlier export: replaced, as the save dialog asked
    return f"{text_safe(path.name)} {why}, and busapp never replaces such a file: choose another name."


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def warn(parent: QWidget, title: str, text: str) -> None:
    """One place for export errors (tests replace QMessageBox.warning)."""
    QMessageBox.warning(parent, title, text)


def report_context(window: MainWindow, rec: ImageRecord) -> dict[str, Any]:
    """The reader's part of a report of ``rec`` (PDF, DICOM export, overlay): their assessment,
    whether the outline is their edit, the DICOM identity and the calipers (outline pair + theirs)."""
    reader = getattr(window, "reader", None)
    edit = getattr(window, "outline_edit", None)
    calipers = getattr(window, "calipers", None)
    return {
        "reader": reader.assessment(rec) if reader is not None else None,
        "outline_edited": bool(edit is not None and edit.is_edited(rec)),
        "identity": reader.identity(rec) if reader is not None else None,
        "calipers": tuple(calipers.items(rec)) if calipers is not None else (),
    }


class ExportController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        A = window.make_action
        self.report_action = A("Export &report\u2026", self.export_report, ["Ctrl+E"],
                               "Save a one-page PDF report of the image shown (Ctrl+E)")
        self.mask_action = A("Export &mask as PNG\u2026", self.export_mask, [],
                             "Save the lesion mask (white on black, image size) as PNG")
        self.overlay_action = A("Export o&verlay as PNG\u2026", self.export_overlay, [],
                                "Save the image with the lesion outline and measured axes as PNG")
        self.actions = (self.report_action, self.mask_action, self.overlay_action)
        menu, sep = window.file_menu, window.file_export_separator
        menu.insertSeparator(sep)
        for a in self.actions:
            menu.insertAction(sep, a)
        window.shown_changed.connect(self.update_actions)
        self.update_actions(None)

    @Slot(object)
    def update_actions(self, _rec: object = None) -> None:
        rec = self.window.current_record()
        ok = rec is not None and rec.analysis is not None and rec.loaded is not None
        for a in self.actions:
            a.setEnabled(ok)

    # -- actions ---------------------------------------------------------------------------------
    @Slot()
    def export_report(self) -> None:
        def write(path: Path, rec: ImageRecord, a: Analysis) -> None:
            from busapp.report.pdf import write_report

            info = self.window.model_info
            write_report(path, rec.loaded, a.prediction, a.measurements, info.card if info else {},
                         frame_index=a.frame_index, sha256=rec.sha256, **report_context(self.window, rec))

        self._export("report", ".pdf", "PDF (*.pdf)", "Export report", EXPORT_REPORT, write)

    @Slot()
    def export_mask(self) -> None:
        def write(path: Path, rec: ImageRecord, a: Analysis) -> None:
            from busapp.report.render import export_mask_png

            export_mask_png(path, a.prediction.mask)

        self._export("mask", ".png", "PNG image (*.png)", "Export mask", EXPORT_MASK, write)

    @Slot()
    def export_overlay(self) -> None:
        def write(path: Path, rec: ImageRecord, a: Analysis) -> None:
            from busapp.core.calipers import reader_lines
            from busapp.report.render import export_overlay_png

            pixels = rec.decoded.pixels if rec.decoded is not None else rec.loaded.frame(a.frame_index)
            calipers = self.window.overlay_controls.calipers_box.isChecked()
            ctx = report_context(self.window, rec)
            note = "Outline edited by reader" if ctx["outline_edited"] else None
            export_overlay_png(path, pixels, a.prediction.mask, a.measurements, calipers=calipers, note=note,
                               reader_lines=reader_lines(ctx["calipers"]))

        self._export("overlay", ".png", "PNG image (*.png)", "Export overlay", EXPORT_OVERLAY, write)

    # -- shared ----------------------------------------------------------------------------------
    def _export(self, kind: str, ext: str, file_filter: str, title: str, action: str,
                write: Callable[[Path, ImageRecord, Analysis], None]) -> Path | None:
        w = self.window
        rec = w.current_record()
        a = rec.analysis if rec is not None else None
        if rec is None or a is None or rec.loaded is None:
            return None
        folder = w.settings.last_export_folder or str(rec.path.parent)  # first time: beside the image
        suggested = str(Path(folder) / default_file_name(rec, kind, ext))
        chosen, _ = QFileDialog.getSaveFileName(w, title, suggested, file_filter)
        if not chosen:
            return None
        path = Path(chosen)
        if path.suffix.lower() != ext:
            path = path.with_name(path.name + ext)
        refused = export_refusal(path, [r.path for r in w.records() if r.path is not None])
        if refused:
            warn(w, f"{title}: not saved", refused)
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            write(path, rec, a)
        except Exception as e:
            log.error("export %s failed: %s", kind, e)
            QApplication.restoreOverrideCursor()
            reason = describe_os_error(e) if isinstance(e, OSError) else f"an error occurred ({type(e).__name__})"
            warn(w, f"{title} failed", f"The {kind} could not be saved to\n{path}\n\nbecause {reason}.")
            return None
        QApplication.restoreOverrideCursor()
        w.settings.last_export_folder = str(path.parent)
        self._audit(action, rec, a, ext.lstrip("."))
        w.statusBar().showMessage(f"Saved {path.name}", 8000)
        return path

    def _audit(self, action: str, rec: ImageRecord, a: Analysis, fmt: str) -> None:
        if rec.sha256 is None:
            return
        p = a.prediction
        try:
            self.window.audit.record(
                action,
                sha256=rec.sha256,
                model={"name": p.model_name, "version": p.model_version},
                outputs={"label": p.label},
                details={"format": fmt, "frame": a.frame_index},
            )
        except Exception as e:  # the file is written; say that the log is not
            log.error("audit log write failed: %s", e)
            warn(self.window, "Audit log", f"The export was saved, but the audit log could not be written:\n{e}")
