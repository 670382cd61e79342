"""The main window: image list | viewer | prediction panel, menus, drop target, worker wiring.

Extension seams (issue #6 and later): ``file_menu`` (insert export actions before
``file_export_separator``), ``view_menu``, ``help_menu``, ``toolbar``; ``current_record()`` and
``records()``; the signals ``current_changed(ImageRecord | None)``, ``result_ready(ImageRecord)``
(each finished analysis, e.g. for an audit log) and ``all_done()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QPixmap,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from busapp import APP_NAME, DISCLAIMER
from busapp.gui.image_list import ANALYSING, DONE, ERROR, LOADING, QUEUED, ImageList
from busapp.gui.overlay_controls import OverlayControls
from busapp.gui.prediction_panel import Disclaimer, PredictionPanel
from busapp.gui.settings import AppSettings
from busapp.gui.viewer import ImageViewer
from busapp.gui.worker import Analysis, DecodedImage, ModelInfo, WorkerThread

if TYPE_CHECKING:
    from busapp.core.imageio import LoadedImage
    from busapp.core.predictor import Prediction

OPEN_FILTER = (
    "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.dcm *.dicom *.ima);;"
    "DICOM (*.dcm *.dicom *.ima);;All files (*)"
)
WORKER_START_DELAY_MS = 30  # let the first frame paint before the model import competes for the GIL


@dataclass
class ImageRecord:
    """One opened file and everything known about it so far."""

    job_id: int
    path: Path
    status: str = QUEUED
    decoded: DecodedImage | None = None
    analysis: Analysis | None = None
    error: str | None = None
    error_stage: str | None = None  # "load" or "analysis"

    @property
    def loaded(self) -> LoadedImage | None:
        return self.decoded.loaded if self.decoded else None

    @property
    def prediction(self) -> Prediction | None:
        return self.analysis.prediction if self.analysis else None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, ERROR)


def _short_error(message: str, name: str) -> str:
    """The list shows the reason without the file name it already displays."""
    msg = message.removeprefix(f"{name}: ").removeprefix("Not analysed: ")
    return msg[:1].upper() + msg[1:]


class MainWindow(QMainWindow):
    current_changed = Signal(object)  # ImageRecord | None
    result_ready = Signal(object)  # ImageRecord with a new analysis
    record_failed = Signal(object)  # ImageRecord with a new error
    all_done = Signal()  # every opened image is done or failed
    model_ready = Signal(object)  # ModelInfo

    def __init__(
        self,
        settings: AppSettings | None = None,
        bundle_dir: Path | None = None,
        icon: QIcon | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.bundle_dir = bundle_dir
        self.app_icon = icon or QIcon()
        self.model_info: ModelInfo | None = None
        self.model_error: str | None = None
        self._records: dict[int, ImageRecord] = {}
        self._by_path: dict[Path, int] = {}
        self._next_job = 1
        self._shown_job: int | None = None
        self._closing = False
        self._first_result_at: float | None = None

        self.setWindowTitle(APP_NAME)
        if not self.app_icon.isNull():
            self.setWindowIcon(self.app_icon)
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._restore_settings()

        self._worker = WorkerThread(bundle_dir, parent=self)
        w = self._worker.worker
        q = Qt.ConnectionType.QueuedConnection  # the worker emits from its own thread
        w.model_ready.connect(self._on_model_ready, q)
        w.model_failed.connect(self._on_model_failed, q)
        w.job_started.connect(self._on_job_started, q)
        w.image_loaded.connect(self._on_image_loaded, q)
        w.result_ready.connect(self._on_result, q)
        w.job_failed.connect(self._on_job_failed, q)

    # ------------------------------------------------------------------------------------------
    # construction
    def _build_widgets(self) -> None:
        self.image_list = ImageList()
        self.image_list.setMinimumWidth(170)
        self.viewer = ImageViewer()
        self.panel = PredictionPanel()
        self.overlay_controls = OverlayControls()

        side = QWidget()
        side.setObjectName("sidePanel")
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        side_lay.setSpacing(0)
        scroll_body = QWidget()
        scroll_body.setObjectName("sidePanel")
        body = QVBoxLayout(scroll_body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.panel)
        rule = QFrame()
        rule.setObjectName("rule")
        rule.setFrameShape(QFrame.Shape.HLine)
        body.addWidget(rule)
        body.addWidget(self.overlay_controls)
        body.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(scroll_body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side_lay.addWidget(scroll, 1)
        self.disclaimer = Disclaimer(DISCLAIMER)
        side_lay.addWidget(self.disclaimer)
        side.setMinimumWidth(280)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setHandleWidth(1)
        self.splitter.addWidget(self.image_list)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(2, False)  # the disclaimer must stay visible
        self.splitter.setSizes([230, 820, 330])
        self.setCentralWidget(self.splitter)

        self.image_list.currentItemChanged.connect(self._on_current_item_changed)
        self.viewer.hovered.connect(self._on_hover)
        self.viewer.left_image.connect(self._on_hover_left)
        self.viewer.zoom_changed.connect(self._on_zoom_changed)
        self.viewer.navigate.connect(self.image_list.step)
        oc = self.overlay_controls
        oc.visible_changed.connect(self._on_overlay_visible)
        oc.mode_changed.connect(self._on_overlay_mode)
        oc.opacity_changed.connect(self._on_overlay_opacity)
        oc.calipers_changed.connect(self._on_calipers)

    def _action(self, text: str, slot, shortcuts: list | None = None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        return a

    def _build_actions(self) -> None:
        A = self._action
        self.open_action = A("&Open images\u2026", self.open_dialog, [QKeySequence.StandardKey.Open],
                             "Open image files (PNG, JPEG, BMP, TIFF, DICOM)")
        self.open_folder_action = A("Open &folder\u2026", self.open_folder_dialog, ["Ctrl+Shift+O"],
                                    "Open every image in a folder")
        self.open_samples_action = A("Open &sample images", self.open_samples, [], "Open the bundled sample images")
        self.clear_action = A("&Close all images", self.clear_images, ["Ctrl+Shift+W"])
        self.quit_action = A("&Quit", self.close, [QKeySequence.StandardKey.Quit])
        self.fit_action = A("&Fit to window", self.viewer.fit, ["F", "Ctrl+0"], "Fit the image to the window (F)")
        self.actual_size_action = A("&Actual size (1:1)", self.viewer.actual_size, ["1", "Ctrl+1"],
                                    "One image pixel per screen pixel (1)")
        self.zoom_in_action = A("Zoom &in", self.viewer.zoom_in, ["+", "=", QKeySequence.StandardKey.ZoomIn],
                                "Zoom in (+, or Ctrl + mouse wheel)")
        self.zoom_out_action = A("Zoom &out", self.viewer.zoom_out, ["-", QKeySequence.StandardKey.ZoomOut],
                                 "Zoom out (\u2212, or Ctrl + mouse wheel)")
        self.toggle_overlay_action = A("Show lesion &overlay", self._toggle_overlay_action, ["G"],
                                       "Show or hide the lesion overlay (G)")
        self.toggle_overlay_action.setCheckable(True)
        self.toggle_overlay_action.setChecked(True)
        self.prev_action = A("&Previous image", self.previous_image, ["PgUp"])
        self.next_action = A("&Next image", self.next_image, ["PgDown"])
        self.about_action = A(f"&About {APP_NAME}", self.show_about, [QKeySequence.StandardKey.HelpContents])

        self.mode_actions = QActionGroup(self)
        self.mode_actions.setExclusive(True)
        self._mode_action: dict[str, QAction] = {}
        for mode, text in (("both", "Fill and outline"), ("fill", "Fill only"), ("outline", "Outline only")):
            a = QAction(text, self, checkable=True)
            a.setData(mode)
            self.mode_actions.addAction(a)
            self._mode_action[mode] = a
        self.mode_actions.triggered.connect(self._on_mode_action)
        self.cycle_mode_action = A("Next overlay style", self._cycle_mode, ["Shift+G"])

    def _build_menus(self) -> None:
        mb = self.menuBar()
        self.file_menu = mb.addMenu("&File")
        for a in (self.open_action, self.open_folder_action, self.open_samples_action):
            self.file_menu.addAction(a)
        self.file_export_separator = self.file_menu.addSeparator()  # exports go before this
        self.file_menu.addAction(self.clear_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)

        self.view_menu = mb.addMenu("&View")
        for a in (self.fit_action, self.actual_size_action, self.zoom_in_action, self.zoom_out_action):
            self.view_menu.addAction(a)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.toggle_overlay_action)
        self.overlay_menu = self.view_menu.addMenu("Overlay &style")
        for a in self._mode_action.values():
            self.overlay_menu.addAction(a)
        self.overlay_menu.addSeparator()
        self.overlay_menu.addAction(self.cycle_mode_action)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.prev_action)
        self.view_menu.addAction(self.next_action)

        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addAction(self.about_action)

        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("mainToolbar")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toolbar.addAction(self.open_action)
        self.toolbar.addSeparator()
        for a in (self.fit_action, self.actual_size_action, self.zoom_in_action, self.zoom_out_action):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.toggle_overlay_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        # Shorter labels on the toolbar than in the menus.
        for a, text in ((self.open_action, "Open\u2026"), (self.fit_action, "Fit"), (self.actual_size_action, "1:1"),
                        (self.zoom_in_action, "Zoom +"), (self.zoom_out_action, "Zoom \u2212"),
                        (self.toggle_overlay_action, "Overlay")):
            a.setIconText(text)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.pixel_label = QLabel("")
        self.zoom_label = QLabel("")
        self.progress_label = QLabel("")
        self.model_label = QLabel("Model: loading\u2026")
        for w in (self.pixel_label, self.zoom_label, self.progress_label, self.model_label):
            sb.addPermanentWidget(w)

    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.window_geometry()
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1440, 900)
        state = s.splitter_state()
        if state is not None:
            self.splitter.restoreState(state)
        oc = self.overlay_controls
        oc.set_opacity(s.overlay_opacity)
        oc.set_mode(s.overlay_mode)
        oc.set_overlay_visible(s.overlay_visible)
        oc.set_calipers(s.show_calipers)
        # Signals above may not fire when the value equals the default: push state explicitly.
        self.viewer.set_overlay_opacity(s.overlay_opacity)
        self.viewer.set_overlay_mode(s.overlay_mode)
        self.viewer.set_overlay_visible(s.overlay_visible)
        self.viewer.set_calipers_visible(s.show_calipers)
        self.toggle_overlay_action.setChecked(s.overlay_visible)
        self._mode_action[s.overlay_mode].setChecked(True)

    def save_settings(self) -> None:
        s = self.settings
        s.set_window_geometry(self.saveGeometry())
        s.set_splitter_state(self.splitter.saveState())
        s.overlay_opacity = self.overlay_controls.opacity()
        s.overlay_mode = self.overlay_controls.mode()
        s.overlay_visible = self.viewer.overlay_visible()
        s.show_calipers = self.overlay_controls.calipers_box.isChecked()
        s.sync()

    # ------------------------------------------------------------------------------------------
    # public API
    def open_paths(self, paths: list[Path] | list[str]) -> list[int]:
        """Queue files (and every image in given folders) for analysis; returns the new job ids.

        Explicit files are always queued, so a file that is not an image gets its own row with the
        loader's message. From folders, only files that look like images are taken; the others
        are counted in the status bar.
        """
        from busapp.core.imageio import find_images, skipped_summary

        files: list[Path] = []
        folders: list[Path] = []
        for p in map(Path, paths):
            (folders if p.is_dir() else files).append(p)
        skipped: list[tuple[Path, str]] = []
        if folders:
            found, skipped = find_images(folders)
            files.extend(found)
            self.settings.last_folder = str(folders[-1])
        elif files:
            self.settings.last_folder = str(files[-1].parent)

        new_ids: list[int] = []
        already: int | None = None
        for f in files:
            key = f.resolve() if f.exists() else f.absolute()
            if key in self._by_path:
                already = self._by_path[key]
                continue
            job = self._next_job
            self._next_job += 1
            rec = ImageRecord(job, f)
            self._records[job] = rec
            self._by_path[key] = job
            self.image_list.add_image(job, f.name, str(f))
            self._worker.worker.submit(job, f)
            new_ids.append(job)
        if new_ids:
            self.image_list.select_job(new_ids[0])
            if self.isVisible():
                self._worker.start()  # else: started once the window shows
        elif already is not None:
            self.image_list.select_job(already)

        msg = []
        if new_ids:
            msg.append(f"Opened {len(new_ids)} image{'s' if len(new_ids) != 1 else ''}.")
        elif files:
            msg.append("Already open.")
        elif folders and not skipped:
            msg.append("No images found in that folder.")
        if skipped:
            msg.append(skipped_summary(skipped))
        if msg:
            self.statusBar().showMessage(" ".join(msg), 8000)
        self._update_progress()
        return new_ids

    def records(self) -> list[ImageRecord]:
        """All opened images, in list order."""
        return [self._records[j] for j in self.image_list.job_ids() if j in self._records]

    def record(self, job_id: int) -> ImageRecord | None:
        return self._records.get(job_id)

    def current_record(self) -> ImageRecord | None:
        job = self.image_list.current_job()
        return None if job is None else self._records.get(job)

    def is_idle(self) -> bool:
        return all(r.finished for r in self._records.values())

    @Slot()
    def previous_image(self) -> None:
        self.image_list.step(-1)

    @Slot()
    def next_image(self) -> None:
        self.image_list.step(1)

    @Slot()
    def clear_images(self) -> None:
        ids = self.image_list.remove_all()
        self._worker.worker.cancel(ids)
        self._records.clear()
        self._by_path.clear()
        self._show_record(None)
        self._update_progress()

    @Slot()
    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open ultrasound images", self.settings.last_folder, OPEN_FILTER)
        if files:
            self.open_paths([Path(f) for f in files])

    @Slot()
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([Path(folder)])

    @Slot()
    def open_samples(self) -> None:
        from busapp.resources import sample_images

        samples = sample_images()
        if samples:
            self.open_paths(samples)
        else:
            self.statusBar().showMessage("No sample images are installed.", 6000)

    @Slot()
    def show_about(self) -> None:
        from busapp.gui.about import AboutDialog

        card = self.model_info.card if self.model_info else None
        if card is None:
            try:  # the card is small JSON; no hashing here
                from busapp.core.model_bundle import load_bundle

                card = load_bundle(self.bundle_dir, verify=False).card
            except Exception:
                card = None
        dlg = AboutDialog(card, self.model_error, self.app_icon, self)
        dlg.exec()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Stop the worker (the current image finishes, the queue is dropped)."""
        self._closing = True
        return self._worker.shutdown(timeout_ms)

    @property
    def worker_thread(self) -> WorkerThread:
        return self._worker

    # ------------------------------------------------------------------------------------------
    # window events
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._worker.started:
            QTimer.singleShot(WORKER_START_DELAY_MS, self._start_worker)

    @Slot()
    def _start_worker(self) -> None:
        if not self._closing:
            self._worker.start()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def _local_paths(self, event: QDragEnterEvent | QDropEvent) -> list[Path]:
        md = event.mimeData()
        if not md.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in md.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._local_paths(event):
            event.acceptProposedAction()
            self.viewer.set_drop_hint(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.viewer.set_drop_hint(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.viewer.set_drop_hint(False)
        paths = self._local_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    # ------------------------------------------------------------------------------------------
    # worker results (queued from the worker thread)
    @Slot(object)
    def _on_model_ready(self, info: ModelInfo) -> None:
        self.model_info = info
        low = info.card.get("postprocessing", {}).get("low_confidence_below")
        self.panel.set_model(info.name, info.version, float(low) if low is not None else None)
        self.model_label.setText(f"Model: {info.name} {info.version}")
        self.model_label.setToolTip("Model files verified against the model card (sha256).")
        self.model_ready.emit(info)

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.model_error = message
        self.panel.set_model_error(message)
        self.model_label.setText("Model: not available")
        self.model_label.setStyleSheet("color: #e8806e;")
        self.model_label.setToolTip(message)
        self.statusBar().showMessage(f"The model could not be loaded: {message}", 15000)

    @Slot(int)
    def _on_job_started(self, job: int) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        rec.status = LOADING
        self.image_list.set_status(job, LOADING)
        if job == self._shown_job:
            self._show_record(rec)

    @Slot(int, object)
    def _on_image_loaded(self, job: int, decoded: DecodedImage) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        rec.decoded = decoded
        rec.status = ANALYSING
        self.image_list.set_thumbnail(job, QPixmap.fromImage(decoded.thumbnail))
        self.image_list.set_status(job, ANALYSING)
        if job == self._shown_job:
            self._show_record(rec)

    @Slot(int, object)
    def _on_result(self, job: int, analysis: Analysis) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        rec.analysis = analysis
        rec.status = DONE
        pred = analysis.prediction
        detail = (f"uncertain \u00b7 {pred.label}? {pred.confidence:.2f}" if pred.low_confidence
                  else f"{pred.label} \u00b7 {pred.confidence:.2f}")
        self.image_list.set_status(job, DONE, detail)
        if self._first_result_at is None:
            self._first_result_at = time.perf_counter()
        if job == self._shown_job:
            self._show_analysis(rec)
        self._update_progress()
        self.result_ready.emit(rec)
        self._check_all_done()

    @Slot(int, str, str)
    def _on_job_failed(self, job: int, message: str, stage: str) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        rec.status = ERROR
        rec.error = message
        rec.error_stage = stage
        self.image_list.set_status(job, ERROR, _short_error(message, rec.path.name))
        if job == self._shown_job:
            self._show_record(rec)
        self._update_progress()
        self.record_failed.emit(rec)
        self._check_all_done()

    def _check_all_done(self) -> None:
        if self._records and self.is_idle():
            self.all_done.emit()

    def _update_progress(self) -> None:
        total = len(self._records)
        if not total:
            self.progress_label.setText("")
            return
        done = sum(r.status == DONE for r in self._records.values())
        failed = sum(r.status == ERROR for r in self._records.values())
        pending = total - done - failed
        parts = [f"{done} of {total} analysed"]
        if failed:
            parts.append(f"{failed} error{'s' if failed != 1 else ''}")
        if pending:
            parts.append(f"{pending} waiting")
        self.progress_label.setText(" \u00b7 ".join(parts))

    # ------------------------------------------------------------------------------------------
    # showing the current image
    @Slot(object, object)
    def _on_current_item_changed(self, current, previous) -> None:
        rec = None if current is None else self._records.get(int(current.data(Qt.ItemDataRole.UserRole + 1)))
        self._show_record(rec)
        self.current_changed.emit(rec)

    def _show_record(self, rec: ImageRecord | None) -> None:
        changed = rec is None or rec.job_id != self._shown_job or not self.viewer.has_image()
        self._shown_job = None if rec is None else rec.job_id
        if rec is None:
            self.setWindowTitle(APP_NAME)
            self.viewer.set_image(None, "Drop ultrasound images here\nor use File \u203a Open (Ctrl+O)")
            self.panel.show_empty()
            self.pixel_label.setText("")
            return
        self.setWindowTitle(f"{APP_NAME} \u2013 {rec.path.name}")
        if rec.decoded is not None:
            if changed:
                self.viewer.set_image(rec.decoded.display)
        else:
            placeholder = ("This file could not be opened." if rec.status == ERROR
                           else f"Opening {rec.path.name}\u2026")
            self.viewer.set_image(None, placeholder)
        self.panel.set_image_info(rec.path.name, self._image_info(rec))
        if rec.status == ERROR:
            self.viewer.clear_overlay()
            title = "Could not open this file" if rec.error_stage == "load" else "Could not analyse this image"
            self.panel.show_error(rec.error or "Unknown error.", title)
        elif rec.analysis is not None:
            self._show_analysis(rec)
        else:
            self.panel.show_pending("Analysing\u2026" if rec.status in (LOADING, ANALYSING) else "Waiting in queue\u2026")

    def _show_analysis(self, rec: ImageRecord) -> None:
        a = rec.analysis
        if a is None:
            return
        m = a.measurements
        calipers = [m.longest_axis, m.perpendicular_axis] if m is not None else None
        self.viewer.set_overlay(a.fill, a.outline, calipers)
        self.panel.set_image_info(rec.path.name, self._image_info(rec))
        self.panel.show_result(a)

    @staticmethod
    def _image_info(rec: ImageRecord) -> str:
        li = rec.loaded
        if li is None:
            return str(rec.path.parent)
        parts = [f"{li.width} \u00d7 {li.height} px", li.source_format]
        if li.n_frames > 1:
            parts.append(f"{li.n_frames} frames (first shown and analysed)")
        if li.pixel_spacing_mm is not None:
            parts.append(f"pixel {li.pixel_spacing_mm[1]:.3f} \u00d7 {li.pixel_spacing_mm[0]:.3f} mm")
        return " \u00b7 ".join(parts)

    # ------------------------------------------------------------------------------------------
    # status bar: pixel under the cursor, zoom
    @Slot(int, int)
    def _on_hover(self, x: int, y: int) -> None:
        rec = self._records.get(self._shown_job) if self._shown_job is not None else None
        if rec is None or rec.decoded is None:
            return
        px = rec.decoded.pixels
        if not (0 <= y < px.shape[0] and 0 <= x < px.shape[1]):
            return
        v = px[y, x]
        value = f"grey {int(v)}" if px.ndim == 2 else "RGB " + ", ".join(str(int(c)) for c in v[:3])
        self.pixel_label.setText(f"x {x}  y {y}  \u00b7  {value}")

    @Slot()
    def _on_hover_left(self) -> None:
        self.pixel_label.setText("")

    @Slot(float)
    def _on_zoom_changed(self, z: float) -> None:
        self.zoom_label.setText(f"Zoom {z * 100:.0f} %")

    # ------------------------------------------------------------------------------------------
    # overlay controls
    @Slot(bool)
    def _on_overlay_visible(self, on: bool) -> None:
        self.viewer.set_overlay_visible(on)
        self.toggle_overlay_action.setChecked(on)
        self.settings.overlay_visible = on

    @Slot()
    def _toggle_overlay_action(self) -> None:
        self.overlay_controls.set_overlay_visible(self.toggle_overlay_action.isChecked())

    def toggle_overlay(self) -> None:
        self.overlay_controls.set_overlay_visible(not self.viewer.overlay_visible())

    @Slot(str)
    def _on_overlay_mode(self, mode: str) -> None:
        self.viewer.set_overlay_mode(mode)
        self._mode_action[mode].setChecked(True)
        self.settings.overlay_mode = mode

    @Slot(QAction)
    def _on_mode_action(self, action: QAction) -> None:
        self.overlay_controls.set_mode(str(action.data()))

    @Slot()
    def _cycle_mode(self) -> None:
        modes = list(self._mode_action)
        nxt = modes[(modes.index(self.overlay_controls.mode()) + 1) % len(modes)]
        self.overlay_controls.set_mode(nxt)

    @Slot(float)
    def _on_overlay_opacity(self, opacity: float) -> None:
        self.viewer.set_overlay_opacity(opacity)
        self.settings.overlay_opacity = opacity

    @Slot(bool)
    def _on_calipers(self, on: bool) -> None:
        self.viewer.set_calipers_visible(on)
        self.settings.show_calipers = on

