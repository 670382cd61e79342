"""File > Batch analysis: analyse a folder on a worker thread with progress, time left and Cancel.

Entry point: ``BatchDialog(parent, folder=None, out_dir=None, bundle_dir=None, audit=None)``;
``dialog.show()`` (non-modal) or ``exec()``. A folder can also be dropped onto the dialog.
Signal ``batch_finished(object)`` carries the ``busapp.core.batch.BatchResult``.

Threading: the batch is one task on the dialog's own ``tasks.SerialExecutor`` (so a long batch
never queues behind, or holds up, the main window's images), running ``core.batch.run_batch``, the
engine ``busapp-cli batch`` uses too. The task owns its Predictor; progress, the result and any
exception reach the dialog on the GUI thread through a ``qt_tasks.TaskBridge``. Cancel sets an
``Event`` the batch checks between images (what was done stays in the CSV and the result is shown);
closing the app cancels too and does not wait for the batch.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal, Slot
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

from busapp.core.batch import BatchProgress, BatchResult
from busapp.core.wording import duration
from busapp.gui.qt_tasks import TaskBridge
from busapp.gui.tasks import SerialExecutor, Task

log = logging.getLogger(__name__)

class BatchJob:
    """What the batch task runs on the executor thread; owns its Predictor between runs."""

    def __init__(self, bundle_dir: Path | None = None, audit: Any = None, predictor: Any = None) -> None:
        self.stop = threading.Event()  # set from the GUI thread: stop after the current image
        self._bundle_dir = bundle_dir
        self._audit = audit
        self._predictor = predictor

    def __call__(self, task: Task, folder: Path, out_dir: Path, resume: bool) -> BatchResult:
        from busapp.core.audit import AuditLog
        from busapp.core.batch import run_batch, throttled
        from busapp.core.measure import CalibrationStore

        if self._predictor is None:
            from busapp.core.batch import lane_predictors

            self._predictor = lane_predictors(self._bundle_dir)  # the CLI's lanes: as fast as it
        stop = _Either(self.stop, task.cancel_event)
        return run_batch(
            folder, out_dir, self._predictor,
            progress=throttled(task.report), cancel=stop, resume=resume,
            audit=self._audit if self._audit is not None else AuditLog(),
            calibrations=CalibrationStore(), source="gui-batch",
        )


class _Either(threading.Event):
    """Set when the user cancels or the task is cancelled (the app quits): what ``run_batch`` polls."""

    def __init__(self, *events: threading.Event) -> None:
        super().__init__()
        self._events = events

    def is_set(self) -> bool:
        return super().is_set() or any(e.is_set() for e in self._events)


class BatchDialog(QDialog):
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

        self.job = BatchJob(bundle_dir, audit, predictor)
        self._executor = SerialExecutor("busapp-batch")
        self._tasks = TaskBridge(self)
        self._task: Task | None = None
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
        self.job.stop.clear()
        if self._executor.closed:  # closed before: a fresh thread
            self._executor = SerialExecutor("busapp-batch")
        task = self._executor.submit(self.job, Path(folder), Path(out), self.resume_box.isChecked())
        self._task = self._tasks.watch(task, on_result=self._on_finished, on_error=self._on_failed,
                                       on_progress=self._on_progress)

    @Slot()
    def cancel(self) -> None:
        if self._running:
            self.job.stop.set()
            self.status_label.setText("Cancelling after the current image...")
            self.cancel_button.setEnabled(False)

    def is_running(self) -> bool:
        return self._running

    # -- worker results (GUI thread) ---------------------------------------------------------------
    def _on_progress(self, p: BatchProgress) -> None:
        self.progress_bar.setRange(0, max(1, p.total))
        self.progress_bar.setValue(p.done)
        left = "estimating time left" if p.eta_s is None else f"about {duration(p.eta_s)} left"
        self.time_label.setText(f"{p.done} of {p.total} images - {left}")

    def _on_finished(self, result: BatchResult) -> None:
        self._running = False
        self.result = result
        self.progress_bar.setRange(0, max(1, result.total))
        self.progress_bar.setValue(result.done)
        self.time_label.setText(f"{result.done} of {result.total} images in {duration(result.elapsed_s)}")
        self.status_label.setText(result.summary())
        self._update_buttons()
        self.batch_finished.emit(result)

    def _on_failed(self, error: BaseException) -> None:
        from busapp.core.model_bundle import ModelBundleError

        if isinstance(error, ModelBundleError | OSError):
            message = f"The batch could not run: {error}"
        else:
            log.error("batch failed", exc_info=(type(error), error, error.__traceback__))
            message = f"The batch could not run ({type(error).__name__}: {error})."
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

    def shutdown(self, timeout_s: float = 0.1) -> bool:
        """Cancel a running batch (also done on close); waits at most ``timeout_s`` for it: the
        images done so far are in the CSV, and the batch thread is a daemon."""
        self.job.stop.set()
        if self._running:
            self._running = False
            self.status_label.setText("Cancelled.")
            self._update_buttons()
        return self._executor.shutdown(timeout_s)

    def is_stopped(self, timeout_s: float = 5.0) -> bool:
        """True once the batch thread has ended (or never started)."""
        t = self._executor._thread
        if t is not None:
            t.join(timeout_s)
        return t is None or not t.is_alive()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def done(self, r: int) -> None:  # Esc / reject also stop the thread
        self.shutdown()
        super().done(r)
