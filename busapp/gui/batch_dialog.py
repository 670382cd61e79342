"""File > Batch analysis: analyse a folder on a worker thread with progress, time left and Cancel.

Entry point: ``BatchDialog(parent, folder=None, out_dir=None, bundle_dir=None, audit=None)``;
``dialog.show()`` (non-modal) or ``exec()``. A folder can also be dropped onto the dialog.
Signal ``batch_finished(object)`` carries the ``busapp.core.batch.BatchResult``.

Threading: ``BatchWorker`` (a QObject) lives in its own QThread and owns its Predictor; it talks to
the dialog only through signals connected to ``@Slot`` methods of the dialog (a GUI-thread object),
so every widget update runs on the GUI thread. Cancel sets a ``threading.Event`` the batch checks
between images; what was done stays in the CSV.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
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

from busapp.cli.batch import format_eta
from busapp.core.batch import BatchProgress, BatchResult


class BatchWorker(QObject):
    """Runs ``run_batch`` on its thread. Signals only; no widgets."""

    progress = Signal(int, int, float)  # done, total, seconds left (-1: not known yet)
    finished = Signal(object)  # BatchResult
    failed = Signal(str)  # a message for the user

    def __init__(self, bundle_dir: Path | None = None, audit: Any = None, predictor: Any = None) -> None:
        super().__init__()
        self.cancel_event = threading.Event()  # set from the GUI thread; Event is thread-safe
        self._bundle_dir = bundle_dir
        self._audit = audit
        self._predictor = predictor

    @Slot(str, str, bool)
    def run(self, folder: str, out_dir: str, resume: bool) -> None:
        from busapp.core.audit import AuditLog
        from busapp.core.batch import run_batch
        from busapp.core.measure import CalibrationStore

        self.cancel_event.clear()
        try:
            if self._predictor is None:
                from busapp.core.predictor import Predictor

                self._predictor = Predictor(self._bundle_dir)
            result = run_batch(
                Path(folder),
                Path(out_dir),
                self._predictor,
                progress=self._on_progress,
                cancel=self.cancel_event,
                resume=resume,
                audit=self._audit if self._audit is not None else AuditLog(),
                calibrations=CalibrationStore(),
                source="gui-batch",
            )
        except Exception as e:  # an uncaught exception in a QThread would leave the dialog hanging
            self.failed.emit(f"The batch could not run: {e}")
            return
        self.finished.emit(result)

    def _on_progress(self, p: BatchProgress) -> None:
        self.progress.emit(p.done, p.total, -1.0 if p.eta_s is None else float(p.eta_s))


class BatchDialog(QDialog):
    start_requested = Signal(str, str, bool)  # -> BatchWorker.run on the worker thread
    batch_finished = Signal(object)  # BatchResult, for the main window (e.g. a status message)

    def __init__(
        self,
        parent: QWidget | None = None,
        folder: Path | None = None,
        out_dir: Path | None = None,
        bundle_dir: Path | None = None,
        audit: Any = None,
        predictor: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("batchDialog")
        self.setWindowTitle("Batch analysis")
        self.setAcceptDrops(True)
        self.setMinimumWidth(560)
        self.result: BatchResult | None = None
        self._running = False

        self.folder_edit = QLineEdit(str(folder) if folder else "")
        self.folder_edit.setPlaceholderText("Folder of images (searched with its sub-folders) - or drop it here")
        self.out_edit = QLineEdit(str(out_dir) if out_dir else "")
        self.out_edit.setPlaceholderText("Folder for results.csv and the masks")
        self.folder_edit.textChanged.connect(self._update_buttons)
        self.out_edit.textChanged.connect(self._update_buttons)
        browse_in = QPushButton("Browse...")
        browse_in.clicked.connect(self._pick_folder)
        browse_out = QPushButton("Browse...")
        browse_out.clicked.connect(self._pick_out)
        self.resume_box = QCheckBox("Resume: skip images already analysed in this output folder")
        self.resume_box.setChecked(True)

        grid = QGridLayout()
        grid.addWidget(QLabel("Images:"), 0, 0)
        grid.addWidget(self.folder_edit, 0, 1)
        grid.addWidget(browse_in, 0, 2)
        grid.addWidget(QLabel("Output:"), 1, 0)
        grid.addWidget(self.out_edit, 1, 1)
        grid.addWidget(browse_out, 1, 2)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.time_label = QLabel("")
        self.status_label = QLabel("Input images are only read; nothing in the image folder is changed.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open output folder")
        self.open_button.clicked.connect(self._open_out)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(self.resume_box)
        lay.addWidget(self.progress_bar)
        lay.addWidget(self.time_label)
        lay.addWidget(self.status_label)
        lay.addLayout(buttons)

        self._thread = QThread(self)
        self._thread.setObjectName("busapp-batch")
        self.worker = BatchWorker(bundle_dir, audit, predictor)
        self.worker.moveToThread(self._thread)
        self.start_requested.connect(self.worker.run)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self._thread.start()
        self._update_buttons()

    # -- user actions -----------------------------------------------------------------------------
    def set_folder(self, folder: Path) -> None:
        self.folder_edit.setText(str(folder))
        if not self.out_edit.text():
            self.out_edit.setText(str(Path(folder).parent / f"{Path(folder).name} - busapp results"))

    @Slot()
    def start(self) -> None:
        folder, out = self.folder_edit.text().strip(), self.out_edit.text().strip()
        if self._running or not folder or not out:
            return
        if not Path(folder).is_dir():
            self.status_label.setText(f"{folder} is not a folder.")
            return
        self._running = True
        self.result = None
        self.progress_bar.setRange(0, 0)  # busy until the first image is done
        self.time_label.setText("Starting (loading the model)...")
        self.status_label.setText(f"Analysing the images in {folder}")
        self._update_buttons()
        self.start_requested.emit(folder, out, self.resume_box.isChecked())

    @Slot()
    def cancel(self) -> None:
        if self._running:
            self.worker.cancel_event.set()
            self.status_label.setText("Cancelling after the current image...")
            self.cancel_button.setEnabled(False)

    def is_running(self) -> bool:
        return self._running

    # -- worker results (GUI thread) ---------------------------------------------------------------
    @Slot(int, int, float)
    def _on_progress(self, done: int, total: int, eta: float) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        left = "estimating time left" if eta < 0 else f"about {format_eta(eta)} left"
        self.time_label.setText(f"{done} of {total} images - {left}")

    @Slot(object)
    def _on_finished(self, result: BatchResult) -> None:
        self._running = False
        self.result = result
        self.progress_bar.setRange(0, max(1, result.total))
        self.progress_bar.setValue(result.done)
        self.time_label.setText(f"{result.done} of {result.total} images in {format_eta(result.elapsed_s)}")
        self.status_label.setText(result.summary())
        self._update_buttons()
        self.batch_finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._running = False
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.time_label.setText("")
        self.status_label.setText(message)
        self._update_buttons()

    # -- helpers ------------------------------------------------------------------------------------
    @Slot()
    def _update_buttons(self) -> None:
        ready = bool(self.folder_edit.text().strip() and self.out_edit.text().strip())
        self.start_button.setEnabled(ready and not self._running)
        self.cancel_button.setEnabled(self._running)
        self.open_button.setEnabled(self.result is not None)
        for w in (self.folder_edit, self.out_edit, self.resume_box):
            w.setEnabled(not self._running)

    @Slot()
    def _pick_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of images", self.folder_edit.text())
        if d:
            self.set_folder(Path(d))

    @Slot()
    def _pick_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if d:
            self.out_edit.setText(d)

    @Slot()
    def _open_out(self) -> None:
        if self.result is not None and self.result.csv_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result.csv_path.parent)))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if not self._running and urls and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.set_folder(Path(event.mimeData().urls()[0].toLocalFile()))
        event.acceptProposedAction()

    def shutdown(self) -> None:
        """Cancel a running batch and stop the worker thread (also done on close)."""
        self.worker.cancel_event.set()
        self._thread.quit()
        self._thread.wait()

    def showEvent(self, event) -> None:
        if not self._thread.isRunning():  # shown again after a close
            self._thread.start()
        super().showEvent(event)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def done(self, r: int) -> None:  # Esc / reject also stop the thread
        self.shutdown()
        super().done(r)
