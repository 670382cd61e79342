"""The main window: image list | viewer | prediction panel, menus, drop target, worker wiring.

Extension seams (issue #6 and later): ``file_menu`` (insert export actions before
``file_export_separator``), ``view_menu``, ``help_menu``, ``toolbar``; ``current_record()`` and
``records()``; the signals ``current_changed(ImageRecord | None)``, ``result_ready(ImageRecord)``
(each finished analysis), ``shown_changed(ImageRecord | None)`` (what the viewer and panel show
changed: enable actions here) and ``all_done()``.

Composed of small parts: ``cine.CineController`` (frame stepping), ``exports.ExportController``
(File > Export ...), ``tools.ToolsController`` (batch, calibration, audit log). Every analysis is
written to the audit log by the worker (off the GUI thread, once per analysis).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal, Slot
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
from busapp.core.audit import AuditLog
from busapp.gui.calipers import CalipersController
from busapp.gui.cine import CineController, FrameControl
from busapp.gui.errors import analysis_error_text, load_error_text, model_error_text
from busapp.gui.exports import ExportController
from busapp.gui.folder_scan import scan_folders
from busapp.gui.image_list import ANALYSING, DONE, ERROR, LOADING, ImageList
from busapp.gui.outline_edit import OutlineEditController
from busapp.gui.overlay_controls import OverlayControls
from busapp.gui.pacs_export import DicomExportController
from busapp.gui.prediction_panel import Disclaimer, PredictionPanel, list_detail, list_tone
from busapp.gui.qt_tasks import TaskBridge
from busapp.gui.reader_panel import ReaderController
from busapp.gui.records import FrameState, ImageRecord, RecentImages
from busapp.gui.settings import AppSettings
from busapp.gui.tasks import SerialExecutor
from busapp.gui.tools import ToolsController
from busapp.gui.viewer import ImageViewer
from busapp.gui.worker import STARTED, Analysis, AnalysisWorker, DecodedImage, ModelInfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from busapp.core.measure import CalibrationStore
    from busapp.gui.tasks import Task

__all__ = ["FrameState", "ImageRecord", "MainWindow", "initial_window_size"]

OPEN_FILTER = (
    "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.dcm *.dicom *.ima);;"
    "DICOM (*.dcm *.dicom *.ima);;All files (*)"
)
MODEL_LOAD_DELAY_MS = 30  # let the window's first frame paint before the model's imports compete with it
# A newly opened image waits up to this long for its result, so that image and outline appear in one
# paint: painting the bare image first took a core from the model (~10 ms of each next image) and
# flashed an unannotated frame. A slower result (large file, busy machine) shows the image first.
DISPLAY_HOLD_MS = 60
PREFERRED_SIZE = QSize(1440, 900)
SCREEN_FRACTION = 0.9


def initial_window_size(available: QRect, preferred: QSize = PREFERRED_SIZE,
                        fraction: float = SCREEN_FRACTION) -> QSize:
    """The first-run window size: the preferred size, but at most ``fraction`` of the screen's
    available area (1366x768 laptops: about 1229x691), never below a usable minimum."""
    if available.isEmpty():
        return preferred
    w = min(preferred.width(), int(available.width() * fraction))
    h = min(preferred.height(), int(available.height() * fraction))
    return QSize(max(w, min(800, available.width())), max(h, min(560, available.height())))


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
    shown_changed = Signal(object)  # ImageRecord | None: what the viewer and the panel show changed

    def __init__(
        self,
        settings: AppSettings | None = None,
        bundle_dir: Path | None = None,
        icon: QIcon | None = None,
        parent: QWidget | None = None,
        audit: AuditLog | None = None,
        calibrations: CalibrationStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.audit = audit if audit is not None else AuditLog()
        self.calibrations = calibrations  # None: the user's store, opened on the worker thread
        self.bundle_dir = bundle_dir
        self.app_icon = icon or QIcon()
        self.model_info: ModelInfo | None = None
        self.model_error: str | None = None
        self._records: dict[int, ImageRecord] = {}
        self._by_path: dict[Path, int] = {}
        self._next_job = 1
        self._shown_job: int | None = None
        self._shown_image: tuple[int, int] | None = None  # (job, frame) of the image in the viewer
        self._closing = False
        self._first_result_at: float | None = None
        self.display_hold_ms = DISPLAY_HOLD_MS  # 0: show each decoded image at once (benchmarks compare)
        self._held: int | None = None  # the job whose decoded image waits for its result
        # Background work: one pattern (tasks.SerialExecutor + qt_tasks.TaskBridge) for all of it.
        self._tasks = TaskBridge(self)
        self._worker = AnalysisWorker(bundle_dir, audit=self.audit, calibrations=calibrations)
        self._scanner = SerialExecutor("busapp-folder-scan")  # one scan at a time: drop order kept
        self._recent = RecentImages()  # which images keep their pixels (memory stays bounded)
        self._opening: dict[int, bool | None] = {}  # files being opened: opened (True), failed, not yet
        self._model_requested = False  # the model is loaded when the window shows, or at the first file

        self.setWindowTitle(APP_NAME)
        if not self.app_icon.isNull():
            self.setWindowIcon(self.app_icon)
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._restore_settings()

        self.cine = CineController(self, self.frame_control)
        self.exports = ExportController(self)
        self.tools = ToolsController(self)
        self.outline_edit = OutlineEditController(self)
        self.reader = ReaderController(self)
        self.calipers = CalipersController(self)
        self.dicom_export = DicomExportController(self)

    # ------------------------------------------------------------------------------------------
    # construction
    def _build_widgets(self) -> None:
        self.image_list = ImageList()
        self.image_list.setMinimumWidth(170)
        self.viewer = ImageViewer()
        self.frame_control = FrameControl()
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
        body.addStretch(1)
        self.side_body = body  # seam: controllers add their sections here
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
        centre = QWidget()
        centre.setObjectName("viewerPane")
        centre_lay = QVBoxLayout(centre)
        centre_lay.setContentsMargins(0, 0, 0, 0)
        centre_lay.setSpacing(0)
        centre_lay.addWidget(self.viewer, 1)
        centre_lay.addWidget(self.overlay_controls)  # under the image: never scrolled out of sight
        centre_lay.addWidget(self.frame_control)
        self.splitter.addWidget(self.image_list)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(2, False)  # the disclaimer must stay visible
        self.splitter.setSizes([200, 860, 320])  # at 1100 px wide the image keeps about 580 px
        self._list_width_by_user = False  # once the reader drags the splitter, the list keeps its width
        self.splitter.splitterMoved.connect(lambda *_: setattr(self, "_list_width_by_user", True))
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

    def make_action(self, text: str, slot: Callable[[], None], shortcuts: list | None = None,
                    tip: str = "") -> QAction:
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
        A = self.make_action
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
        self.toggle_calipers_action = A("Show measured &axes", self._toggle_calipers_action, ["M"],
                                        "Show or hide the calipers of the measured axes (M)")
        self.toggle_calipers_action.setCheckable(True)
        self.toggle_calipers_action.setChecked(True)
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
        self.view_menu.addAction(self.toggle_calipers_action)
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
            self._fit_to_screen()
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
        self.toggle_calipers_action.setChecked(s.show_calipers)
        self._mode_action[s.overlay_mode].setChecked(True)

    def _fit_to_screen(self) -> None:
        screen = self.screen()
        avail = screen.availableGeometry() if screen is not None else QRect()
        size = initial_window_size(avail)
        self.resize(size)
        if not avail.isEmpty():
            self.move(avail.center() - QRect(0, 0, size.width(), size.height()).center())

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
        """Queue files for analysis and start scanning given folders; returns the new job ids of
        the files (images found in folders are queued when the scan, off the GUI thread, ends).

        Explicit files are always queued, so a file that is not an image gets its own row with the
        loader's message. From folders, only files that look like images are taken; the others
        are counted in the status bar.
        """
        files: list[Path] = []
        folders: list[Path] = []
        for p in map(Path, paths):
            (folders if p.is_dir() else files).append(p)
        if folders:
            self.settings.last_folder = str(folders[-1])
            self._tasks.watch(self._scanner.submit(scan_folders, folders), on_result=self._on_folders_scanned)
            self.statusBar().showMessage("Looking for images in the folder…", 8000)
        elif files:
            self.settings.last_folder = str(files[-1].parent)
        return self._queue_files(files, [], from_folder=False) if files else []

    def _on_folders_scanned(self, found: tuple[list[Path], list[tuple[Path, str]]]) -> None:
        self._queue_files(*found, from_folder=True)

    def _queue_files(self, files: list[Path], skipped: list[tuple[Path, str]], from_folder: bool) -> list[int]:
        from busapp.core.imageio import skipped_summary

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
            self._submit_open(rec)
            new_ids.append(job)
        if new_ids:
            self.image_list.select_job(new_ids[0])
            self._fit_list_width()
        elif already is not None:
            self.image_list.select_job(already)

        msg = []
        if new_ids:
            # "Opened" only once each file is decoded (``_note_opened``): unreadable files are no images.
            msg.append(f"Opening {len(new_ids)} file{'s' if len(new_ids) != 1 else ''}\u2026")
            self._opening.update(dict.fromkeys(new_ids))
        elif files:
            msg.append("Already open.")
        elif from_folder and not skipped:
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
        self._opening.clear()
        self._worker.cancel(ids)
        self._recent.forget()
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

    def shutdown(self, timeout_ms: int = 200) -> bool:
        """Cancel all background work; waits at most ``timeout_ms`` for the running job (daemon
        threads: quitting never waits for a long decode or a batch)."""
        self._closing = True
        self._scanner.shutdown(0.0)
        return self._worker.shutdown(timeout_ms / 1000)

    @property
    def worker_thread(self) -> AnalysisWorker:
        """The analysis worker (``wait(ms)`` after closing: True once its thread has ended)."""
        return self._worker

    # ------------------------------------------------------------------------------------------
    # window events
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._model_requested:  # after the first frame has painted: imports hold the GIL
            QTimer.singleShot(MODEL_LOAD_DELAY_MS, self._request_model)

    @Slot()
    def _request_model(self) -> None:
        """Load the model (verified, first inference done), then warm the rest of the path when
        idle: a drop at any moment after that finds everything ready (issue 27)."""
        if self._model_requested or self._closing:
            return
        self._model_requested = True
        self._tasks.watch(self._worker.load_model(), on_result=self._on_model_ready, on_error=self._on_model_failed)
        self._worker.warm_up()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.tools.shutdown()
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
    # background work: submitted here, results delivered here (on the GUI thread, never stale)
    def _submit_open(self, rec: ImageRecord) -> None:
        self._request_model()  # ahead of the file (files opened before the window shows)
        job = rec.job_id
        self._tasks.watch(self._worker.open(job, rec.path),
                          on_progress=lambda v: self._on_open_progress(job, v),
                          on_result=lambda a: self._on_result(job, a),
                          on_error=lambda e: self._on_job_failed(job, e))

    def watch(self, task: Task, on_result: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> Task:
        """Deliver a background task's result or exception on the GUI thread (stale ones never)."""
        return self._tasks.watch(task, on_result=on_result, on_error=on_error)

    def request_frame(self, rec: ImageRecord, frame: int) -> Task | None:
        """Decode and analyse ``frame`` of an opened image on the worker (cine stepping)."""
        if rec.loaded is None:
            return None
        job = rec.job_id
        return self._tasks.watch(self._worker.analyse_frame(job, rec.loaded, frame, rec.sha256),
                                 on_progress=lambda d: self._on_image_loaded(job, d),
                                 on_result=lambda a: self._on_result(job, a),
                                 on_error=lambda e: self._on_frame_failed(job, frame, e))

    def keep_frame(self, rec: ImageRecord) -> None:
        """The user is back on an analysed frame: drop an unstarted request for another one."""
        self._worker.drop_frame_request(rec.job_id)

    def _keep_in_memory(self, job: int) -> None:
        """``job``'s pixels are in use now; the least recently used images beyond the cache drop theirs."""
        dropped = self._recent.touch(job)
        if self._shown_job in dropped:  # the image on screen keeps its pixels
            dropped.remove(self._shown_job)
            dropped += self._recent.touch(self._shown_job)
        for j in dropped:
            rec = self._records.get(j)
            if rec is not None:
                rec.drop_pixels()

    def _restore(self, rec: ImageRecord) -> None:
        """Decode an evicted image again and rebuild its overlay from the stored mask (no model run)."""
        if rec.restoring:
            return
        rec.restoring = True
        job = rec.job_id
        masks = {k: st.analysis.prediction.mask for k, st in rec.frames.items() if st.analysis is not None}
        self._tasks.watch(self._worker.restore(job, rec.path, rec.sha256, rec.frame, masks),
                          on_result=lambda r: self._on_restored(job, r),
                          on_error=lambda e: self._on_restore_failed(job, e))

    def _on_restored(self, job: int, restored: tuple) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        decoded, overlays = restored
        rec.restoring = rec.evicted = False
        rec.loaded_image = decoded.loaded
        rec.state(decoded.frame_index).decoded = decoded
        for k, (fill, outline) in overlays.items():
            st = rec.frames.get(k)
            if st is not None and st.analysis is not None:
                st.analysis.fill, st.analysis.outline = fill, outline
        self._keep_in_memory(job)
        if job == self._shown_job:
            self._show_record(rec)

    def _on_restore_failed(self, job: int, error: BaseException) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        rec.restoring = False
        rec.status, rec.error, rec.error_stage = ERROR, load_error_text(error, rec.path.name), "load"
        self.image_list.set_status(job, ERROR, _short_error(rec.error, rec.path.name))
        if job == self._shown_job:
            self._show_record(rec)

    def _on_model_ready(self, info: ModelInfo) -> None:
        self.model_info = info
        self.panel.set_model(info.name, info.version, info.card.postprocessing.low_confidence_below)
        self.panel.set_card(info.card)  # its decision rule sets the malignancy bands
        self.model_label.setText(f"Model: {info.name} {info.version}")
        self.model_label.setToolTip("Model files verified against the model card (sha256).")
        self.model_ready.emit(info)

    def _on_model_failed(self, error: BaseException) -> None:
        message = model_error_text(error)
        self.model_error = message
        self.panel.set_model_error(message)
        self.model_label.setText("Model: not available")
        self.model_label.setStyleSheet("color: #e8806e;")
        self.model_label.setToolTip(message)
        self.statusBar().showMessage(f"The model could not be loaded: {message}", 15000)

    def _on_open_progress(self, job: int, value: object) -> None:
        if value == STARTED:
            rec = self._records.get(job)
            if rec is not None:
                rec.status = LOADING
                self.image_list.set_status(job, LOADING)
                if job == self._shown_job and rec.n_frames == 1:  # only the panel's line changes
                    self.panel.show_pending("Analysing\u2026")
        else:
            self._on_image_loaded(job, value)  # type: ignore[arg-type]

    def _on_image_loaded(self, job: int, decoded: DecodedImage) -> None:
        """A decoded frame: the file's first one on opening, or a cine frame the user stepped to."""
        rec = self._records.get(job)
        if rec is None:
            return
        rec.state(decoded.frame_index).decoded = decoded
        if rec.loaded_image is None:  # the file has just been opened
            rec.loaded_image = decoded.loaded
            rec.sha256 = decoded.sha256
            rec.status = ANALYSING
            self.image_list.set_thumbnail(job, QPixmap.fromImage(decoded.thumbnail))
            self.image_list.set_status(job, ANALYSING)
            self._keep_in_memory(job)
            self._note_opened(job, True)
            if job == self._shown_job and self.model_info is not None and self.display_hold_ms > 0:
                self._held = job
                QTimer.singleShot(self.display_hold_ms, lambda: self._release_hold(job))
                return
        if job == self._shown_job and decoded.frame_index == rec.frame:
            self._show_record(rec)

    def _release_hold(self, job: int) -> None:
        """The held image's result is late: show the image now, the result when it comes."""
        if self._held != job:
            return  # its result (or failure) came in time, or another image is shown
        self._held = None
        rec = self._records.get(job)
        if rec is not None and job == self._shown_job:
            self._show_record(rec)

    def _on_result(self, job: int, analysis: Analysis) -> None:
        rec = self._records.get(job)
        if rec is None:
            return
        st = rec.state(analysis.frame_index)
        st.analysis, st.error = analysis, None
        if self._first_result_at is None:
            self._first_result_at = time.perf_counter()
        if analysis.frame_index == rec.frame:  # else: cached for when the user steps back to it
            self.set_record_status(rec, DONE)
            if job == self._shown_job:
                self._show_record(rec)
        if analysis.audit_error:
            self.statusBar().showMessage(analysis.audit_error, 15000)
        self._update_progress()
        self.result_ready.emit(rec)
        self._check_all_done()

    def _on_frame_failed(self, job: int, frame: int, error: BaseException) -> None:
        """One cine frame could not be decoded or analysed; the file and its other frames are fine."""
        rec = self._records.get(job)
        if rec is None:
            return
        rec.state(frame).error = analysis_error_text(error, rec.path.name)
        if frame == rec.frame:
            self.set_record_status(rec, DONE)
            if job == self._shown_job:
                self._show_record(rec)
        self._update_progress()
        self._check_all_done()

    def set_record_status(self, rec: ImageRecord, status: str) -> None:
        """Status of the frame shown; the list's second line names the result (and its frame)."""
        rec.status = status
        detail = tone = None
        a = rec.analysis
        if status == DONE and a is not None:
            card = self.model_info.card if self.model_info else None
            detail, tone = list_detail(a, card), list_tone(a, card)  # the panel's wording and band tint
        elif status == DONE and rec.frame_error is not None:
            detail = "frame could not be analysed"
        if detail is not None and rec.n_frames > 1:
            detail = f"frame {rec.frame + 1}: {detail}"
        self.image_list.set_status(rec.job_id, status, detail, tone)
        if status == DONE:
            self._fit_list_width()
        self._update_progress()

    def _fit_list_width(self) -> None:
        """Widen the image list so names and results show whole while the image keeps most of the
        room (600 px, or half the window); never narrower than now, never against the reader's drag."""
        if self._list_width_by_user:
            return
        viewer_keeps = max(600, self.width() // 2)
        sizes = self.splitter.sizes()
        want = self.image_list.preferred_width()
        grow = min(want - sizes[0], sizes[1] - viewer_keeps)
        if grow > 0:
            self.splitter.setSizes([sizes[0] + grow, sizes[1] - grow, sizes[2]])

    def refresh_current(self) -> None:
        """Show the current record again (after its frame or its measurements changed)."""
        self._show_record(self.current_record())

    def _on_job_failed(self, job: int, error: BaseException) -> None:
        """Opening failed before the image could be shown ("load"), or its analysis did."""
        rec = self._records.get(job)
        if rec is None:
            return
        name = rec.path.name
        if rec.loaded_image is None:
            stage, message = "load", load_error_text(error, name)
        else:
            stage, message = "analysis", analysis_error_text(error, name)
        rec.status = ERROR
        rec.error = message
        rec.error_stage = stage
        if stage == "load":
            self._note_opened(job, False)
        self.image_list.set_status(job, ERROR, _short_error(message, rec.path.name))
        if job == self._shown_job:
            self._show_record(rec)
        self._update_progress()
        self.record_failed.emit(rec)
        self._check_all_done()

    def _note_opened(self, job: int, ok: bool) -> None:
        """One file of the last set opened was decoded (or not); once all are, say how many opened."""
        if job not in self._opening:
            return
        self._opening[job] = ok
        if any(v is None for v in self._opening.values()):
            return
        from busapp.core.wording import opened_summary

        n_ok = sum(1 for v in self._opening.values() if v)
        self.statusBar().showMessage(opened_summary(n_ok, len(self._opening) - n_ok), 8000)
        self._opening.clear()

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
        self._held = None  # whatever is shown now is shown whole
        self._shown_job = None if rec is None else rec.job_id
        self.cine.sync(rec)
        if rec is None:
            self._shown_image = None
            self.setWindowTitle(APP_NAME)
            self.viewer.set_image(None, "Drop ultrasound images here\nor use File \u203a Open (Ctrl+O)")
            self.panel.show_empty()
            self.pixel_label.setText("")
            self.shown_changed.emit(None)
            return
        self.setWindowTitle(f"{APP_NAME} \u2013 {rec.path.name}")
        self._keep_in_memory(rec.job_id)
        if rec.evicted:
            self._restore(rec)  # decoded again off the GUI thread; shown when it arrives
        self._show_image(rec)
        self.panel.set_image_info(rec.path.name, self._image_info(rec))
        multi = rec.n_frames > 1
        if rec.status == ERROR:
            self.viewer.clear_overlay()
            title = "Could not open this file" if rec.error_stage == "load" else "Could not analyse this image"
            self.panel.show_error(rec.error or "Unknown error.", title)
        elif rec.frame_error is not None:
            self.viewer.clear_overlay()
            self.panel.show_error(rec.frame_error, f"Could not analyse frame {rec.frame + 1}")
            self.panel.set_frame(rec.frame, rec.n_frames)
        elif rec.analysis is not None and rec.evicted:
            self.viewer.clear_overlay()  # the overlay comes back with the pixels
            self.panel.show_result(rec.analysis)
        elif rec.analysis is not None:
            self._show_analysis(rec)
        else:
            self.viewer.clear_overlay()
            if rec.status in (LOADING, ANALYSING):
                self.panel.show_pending(f"Analysing frame {rec.frame + 1}\u2026" if multi else "Analysing\u2026")
            else:
                self.panel.show_pending("Waiting in queue\u2026")
            if multi:
                self.panel.set_frame(rec.frame, rec.n_frames)
        self.shown_changed.emit(rec)

    def _show_image(self, rec: ImageRecord) -> None:
        """The record's shown frame in the viewer; while a stepped-to frame decodes, the last one stays."""
        key = (rec.job_id, rec.frame)
        same_file = self._shown_image is not None and self._shown_image[0] == rec.job_id and self.viewer.has_image()
        if rec.decoded is not None:
            if key != self._shown_image or not self.viewer.has_image():
                if same_file:
                    self.viewer.replace_image(rec.decoded.display)  # keep zoom and pan between frames
                else:
                    self.viewer.set_image(rec.decoded.display)
                self._shown_image = key
        elif not (same_file and rec.loaded is not None):
            placeholder = ("This file could not be opened." if rec.status == ERROR and not rec.evicted
                           else f"Opening {rec.path.name}\u2026")
            self.viewer.set_image(None, placeholder)
            self._shown_image = None

    def _show_analysis(self, rec: ImageRecord) -> None:
        a = rec.analysis
        if a is None:
            return
        m = a.measurements
        calipers = [m.longest_axis, m.perpendicular_axis] if m is not None else None
        self.viewer.set_overlay(a.fill, a.outline, calipers)
        self.panel.show_result(a)

    @staticmethod
    def _image_info(rec: ImageRecord) -> str:
        li = rec.loaded
        if li is None:
            return str(rec.path.parent)
        first = rec.frames.get(0)  # never evicted; li.width could decode frame 0 again on this thread
        h, w = first.decoded.pixels.shape[:2] if first and first.decoded else (li.height, li.width)
        parts = [f"{w} \u00d7 {h} px", li.source_format]
        if li.n_frames > 1:
            parts.append(f"frame {rec.frame + 1} of {li.n_frames}")
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
        self.zoom_label.setText(f"Zoom {z * 100:.0f} %" if self.viewer.has_image() else "")

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
        self.toggle_calipers_action.setChecked(on)
        self.settings.show_calipers = on

    @Slot()
    def _toggle_calipers_action(self) -> None:
        self.overlay_controls.set_calipers(self.toggle_calipers_action.isChecked())

