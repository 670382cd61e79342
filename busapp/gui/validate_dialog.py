"""Tools > Validate on my images...: ``core.site_validation`` with a form, in the background.

The user picks a folder of images, a labels CSV (file, label, optional mask) and an output folder;
the run happens on its own thread with progress and Cancel, and ends with the verdict and the
paths of the PDF / JSON / CSV report. Images are read in place, never copied.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

LABELS_HELP = ("Labels: a CSV file with a header row and the columns file (path relative to the image folder), "
               "label (normal, benign or malignant) and optionally mask (path to a lesion mask). The report names "
               "images by SHA-256 only unless you tick the box.")


class ValidationThread(QThread):
    """Loads its own model (one Analyzer per thread) and runs the validation."""

    progressed = Signal(int, int)
    finished_run = Signal(object)  # {"figures": ..., "paths": ...}
    failed = Signal(str)

    def __init__(self, folder: Path, labels: Path, out_dir: Path, names: bool, bundle_dir: Path | None,
                 audit: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder, self.labels, self.out_dir, self.names = folder, labels, out_dir, names
        self.bundle_dir, self.audit = bundle_dir, audit
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            from busapp.core.analysis import Analyzer
            from busapp.core.model_bundle import ModelBundleError
            from busapp.core.output_paths import describe_os_error
            from busapp.core.predictor import Predictor
            from busapp.core.site_validation import LabelsError, read_labels, run_validation, write_outputs

            try:
                read_labels(self.folder, self.labels)
                analyzer = Analyzer(Predictor(self.bundle_dir, num_threads=2), audit=self.audit)
            except (LabelsError, ModelBundleError) as e:
                self.failed.emit(str(e))
                return
            run = run_validation(self.folder, self.labels, analyzer, progress=self.progressed.emit,
                                 cancelled=self._cancel.is_set)
            if self._cancel.is_set():
                self.failed.emit("Validation cancelled; no report was written.")
                return
            try:
                paths = write_outputs(run, self.out_dir, names=self.names)
            except OSError as e:
                self.failed.emit(f"The report could not be written to {self.out_dir} ({describe_os_error(e)}).")
                return
            self.finished_run.emit({"figures": run.figures, "paths": paths, "run": run, "card": analyzer.bundle.card,
                                    "model_sha256": str(analyzer.model.sha256)})
        except Exception as e:  # an uncaught exception in a QThread would leave the dialog waiting
            self.failed.emit(f"Validation failed ({type(e).__name__}: {e}).")


class ValidateDialog(QDialog):
    validation_finished = Signal(object)

    def __init__(self, parent: QWidget | None = None, bundle_dir: Path | None = None, audit: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Validate on my images")
        self.setObjectName("validateDialog")
        self.bundle_dir, self.audit = bundle_dir, audit
        self.thread: ValidationThread | None = None
        self.result: dict[str, Any] | None = None
        lay = QVBoxLayout(self)
        intro = QLabel("Check busapp on your own labelled images before relying on it: sensitivity and specificity "
                       "at the shipped threshold, AUC, calibration and a verdict against the model card.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        grid = QGridLayout()
        self.folder_edit, self.labels_edit, self.out_edit = QLineEdit(), QLineEdit(), QLineEdit()
        for row, (label, edit, pick) in enumerate((
            ("Image folder", self.folder_edit, self._pick_folder),
            ("Labels CSV", self.labels_edit, self._pick_labels),
            ("Report folder", self.out_edit, self._pick_out),
        )):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            b = QPushButton("Browse\u2026")
            b.clicked.connect(pick)
            grid.addWidget(b, row, 2)
            edit.textChanged.connect(self._update_buttons)
        lay.addLayout(grid)
        help_ = QLabel(LABELS_HELP)
        help_.setObjectName("note")
        help_.setWordWrap(True)
        lay.addWidget(help_)
        self.names_box = QCheckBox("Name the image files in the report")
        lay.addWidget(self.names_box)
        self.progress = QProgressBar()
        self.progress.hide()
        lay.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("validateStatus")
        lay.addWidget(self.status)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open report")
        self.open_button.clicked.connect(self._open_report)
        self.open_button.hide()
        self.site_button = QPushButton("Use as this site's threshold")
        self.site_button.setToolTip("Replace the model card's suspicious threshold by the one this validation "
                                    "justifies (sensitivity kept at the card's validated level); stored with this "
                                    "report in your data folder and audited")
        self.site_button.clicked.connect(self.set_site_threshold)
        self.site_button.hide()
        self.run_button = QPushButton("Validate")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.site_button)
        buttons.addStretch(1)
        for b in (self.run_button, self.cancel_button, close):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.resize(620, 320)
        self._update_buttons()

    # -- form -----------------------------------------------------------------------------------------
    def _pick_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of images")
        if d:
            self.folder_edit.setText(d)
            if not self.out_edit.text():
                self.out_edit.setText(str(Path(d).parent / "busapp-validation"))

    def _pick_labels(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Labels CSV", self.folder_edit.text(), "CSV files (*.csv)")
        if f:
            self.labels_edit.setText(f)

    def _pick_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder for the report")
        if d:
            self.out_edit.setText(d)

    def _update_buttons(self) -> None:
        running = self.thread is not None and self.thread.isRunning()
        filled = all(e.text().strip() for e in (self.folder_edit, self.labels_edit, self.out_edit))
        self.run_button.setEnabled(filled and not running)
        self.cancel_button.setEnabled(running)

    # -- running ----------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        folder, labels = Path(self.folder_edit.text().strip()), Path(self.labels_edit.text().strip())
        out = Path(self.out_edit.text().strip())
        if not folder.is_dir():
            self.status.setText(f"{folder}: not a folder.")
            return
        if not labels.is_file():
            self.status.setText(f"{labels.name}: no such file.")
            return
        self.result = None
        self.open_button.hide()
        self.site_button.hide()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText("Loading the model\u2026")
        self.thread = ValidationThread(folder, labels, out, self.names_box.isChecked(), self.bundle_dir, self.audit,
                                       self)
        self.thread.progressed.connect(self._on_progress)
        self.thread.finished_run.connect(self._on_finished)
        self.thread.failed.connect(self._on_failed)
        self.thread.finished.connect(self._update_buttons)
        self.thread.start()
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        if self.thread is not None:
            self.thread.cancel()
            self.status.setText("Cancelling\u2026")

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(f"Analysed {done} of {total} images\u2026")

    @Slot(object)
    def _on_finished(self, result: dict[str, Any]) -> None:
        self.result = result
        self.progress.hide()
        f = result["figures"]
        self.status.setText(f"{f['verdict']['text']}\n\nReport: {result['paths']['pdf']}")
        self.open_button.show()
        self.site_button.setVisible(f["verdict"]["status"] != "insufficient" and f.get("threshold") is not None)
        self.validation_finished.emit(result)

    @Slot()
    def set_site_threshold(self) -> None:
        from busapp.core import site_threshold

        r = self.result
        if not r:
            return
        out = site_threshold.set_from_run(r["run"], r["paths"]["json"], r["card"], r["model_sha256"], self.audit)
        self.status.setText(self.status.text() + "\n\n" + (
            f"Site threshold set: {out['description']}. Images analysed from now on use it; reopen images "
            "analysed before." if out["set"] else out["reason"]))
        self.site_button.hide()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.progress.hide()
        self.status.setText(message)

    def _open_report(self) -> None:
        if self.result:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result["paths"]["pdf"])))

    def shutdown(self) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.thread.cancel()
            self.thread.wait(30000)

    def closeEvent(self, event: Any) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.thread.cancel()
        super().closeEvent(event)
