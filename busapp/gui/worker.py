"""The analysis worker: decodes images and runs the model off the GUI thread.

One ``AnalysisWorker`` (a QObject) lives in one QThread and owns the ``Predictor``. The GUI thread
only calls ``submit``/``submit_frame``/``cancel``/``stop`` (thread-safe, they touch a
``queue.PriorityQueue``, a lock and an ``Event``) and receives results as queued signals. Everything the GUI needs to draw (display
QImage, thumbnail, overlay image, outline path) is built here too, so the GUI thread only wraps
ready-made QImages into pixmaps. Every exception is caught and emitted as ``job_failed``: an
uncaught exception in a QThread would only be printed, leaving the image "analysing" for ever.

The worker also hashes each file (sha256, for calibrations, reports and the audit log: big files
must not be hashed on the GUI thread) and appends one audit record per analysis it produces, so
the log holds every GUI analysis exactly once. Cine frames other than the first are analysed on
request (``submit_frame``): such requests go before queued files, and a request superseded by a
newer one for the same image is dropped unstarted.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPainterPath

from busapp.core.hashing import sha256_file
from busapp.report.render import array_to_qimage, mask_outline_path

if TYPE_CHECKING:  # heavy imports (numpy, LiteRT) happen in the worker thread only
    import numpy as np

    from busapp.core.audit import AuditLog
    from busapp.core.imageio import LoadedImage
    from busapp.core.measure import CalibrationStore, LesionMeasurements
    from busapp.core.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

THUMB_SIZE = 112
LESION_RGB = (255, 200, 61)  # warm yellow: stands out on grey ultrasound, not "alarm" red
# The fill is a paler tone of the outline colour: at the default 50 % opacity it tints the lesion
# without flattening its echo texture, while the saturated outline marks the border.
LESION_FILL_RGB = (240, 214, 150)
_FILE_PRIORITY, _FRAME_PRIORITY, _STOP_PRIORITY = 2, 1, 0  # lower runs first


@dataclass
class DecodedImage:
    """An image decoded for display: what the GUI shows before (and while) the model runs."""

    loaded: LoadedImage
    pixels: np.ndarray = field(repr=False)  # the displayed frame (for the grey value under the cursor)
    display: QImage = field(repr=False)
    thumbnail: QImage = field(repr=False)  # null for frames other than the first
    sha256: str | None = None  # of the file; None only if it could not be read a second time
    frame_index: int = 0


@dataclass
class Analysis:
    """The model's output for one image, with the overlay already rendered for Qt."""

    prediction: Prediction
    measurements: LesionMeasurements | None
    fill: QImage | None = field(repr=False)  # RGBA lesion fill at image size; None if the mask is empty
    outline: QPainterPath = field(repr=False)  # lesion outline along pixel edges, image coordinates
    seconds: float = 0.0  # decode + predict + measure
    frame_index: int = 0  # which frame of a cine the result belongs to
    n_frames: int = 1


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    card: dict[str, Any]


def mask_fill_image(mask: np.ndarray, rgb: tuple[int, int, int] = LESION_FILL_RGB) -> QImage:
    import numpy as np

    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*rgb, 255)
    return array_to_qimage(rgba)


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def thumbnail_of(img: QImage, size: int = THUMB_SIZE) -> QImage:
    return img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


class AnalysisWorker(QObject):
    """Owns the Predictor; processes (job id, path) items in order. Lives in its own QThread."""

    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)  # message for the user
    job_started = Signal(int)
    image_loaded = Signal(int, object)  # job id, DecodedImage
    result_ready = Signal(int, object)  # job id, Analysis
    job_failed = Signal(int, str, str)  # job id, message for the user, stage: "load" or "analysis"
    frame_failed = Signal(int, int, str)  # job id, frame index, message (a requested cine frame)
    audit_failed = Signal(str)  # the audit log could not be written (the analysis itself stands)
    finished = Signal()

    def __init__(
        self,
        bundle_dir: Path | None = None,
        num_threads: int = 2,
        audit: AuditLog | None = None,
        calibrations: CalibrationStore | None = None,
    ) -> None:
        super().__init__()
        self._bundle_dir = bundle_dir
        self._num_threads = num_threads
        self._audit = audit
        self._calibrations = calibrations
        # (priority, sequence, item): frame requests before files, FIFO within a priority.
        self._queue: queue.PriorityQueue[tuple[int, int, tuple | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._cancelled: set[int] = set()
        self._wanted_frame: dict[int, int] = {}  # job id -> the frame the user looks at now
        self._lock = threading.Lock()
        self._predictor: Predictor | None = None
        self._model_error: str | None = None

    # -- called from the GUI thread (thread-safe) -----------------------------------------------
    def submit(self, job_id: int, path: Path) -> None:
        self._queue.put((_FILE_PRIORITY, next(self._seq), ("file", job_id, Path(path))))

    def submit_frame(self, job_id: int, loaded: LoadedImage, frame: int, sha256: str | None) -> None:
        """Analyse ``frame`` of an already opened image; supersedes earlier requests for that image."""
        with self._lock:
            self._wanted_frame[job_id] = frame
        self._queue.put((_FRAME_PRIORITY, next(self._seq), ("frame", job_id, loaded, frame, sha256)))

    def want_frame(self, job_id: int, frame: int) -> None:
        """The user is back on an already analysed frame: drop unstarted requests for other frames."""
        with self._lock:
            self._wanted_frame[job_id] = frame

    def cancel(self, job_ids: set[int] | list[int]) -> None:
        """Skip these jobs if they have not started yet (e.g. the image was removed from the list)."""
        with self._lock:
            self._cancelled.update(job_ids)
            for j in job_ids:
                self._wanted_frame.pop(j, None)

    def stop(self) -> None:
        """Finish the current image, drop the rest of the queue, and return from ``run``."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put((_STOP_PRIORITY, next(self._seq), None))

    @property
    def model_error(self) -> str | None:
        return self._model_error

    # -- worker thread -----------------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        """The worker loop, started by ``QThread.started``; returns after ``stop()``."""
        try:
            if self._queue.empty():  # nothing to show yet: warm the model up now
                self._ensure_predictor()
            while not self._stop.is_set():
                _, _, item = self._queue.get()
                if item is None or self._stop.is_set():
                    break
                if item[0] == "file":
                    _, job_id, path = item
                    with self._lock:
                        if job_id in self._cancelled:
                            self._cancelled.discard(job_id)
                            continue
                    self._process(job_id, path)
                else:
                    _, job_id, loaded, frame, sha256 = item
                    with self._lock:
                        if job_id in self._cancelled or self._wanted_frame.get(job_id) != frame:
                            continue  # removed, or the user has moved on to another frame
                    self._process_frame(job_id, loaded, frame, sha256)
        except BaseException:  # never let the thread die silently
            log.exception("analysis worker crashed")
        finally:
            self.finished.emit()

    def _ensure_predictor(self) -> Predictor | None:
        if self._predictor is not None or self._model_error is not None:
            return self._predictor
        try:
            from busapp.core.predictor import Predictor

            self._predictor = Predictor(self._bundle_dir, num_threads=self._num_threads)
        except Exception as e:
            from busapp.core.model_bundle import ModelBundleError

            if isinstance(e, ModelBundleError):
                self._model_error = str(e)
            else:
                log.exception("model could not be loaded")
                self._model_error = f"The model could not be loaded ({type(e).__name__}: {e})."
            self.model_failed.emit(self._model_error)
            return None
        b = self._predictor.bundle
        self.model_ready.emit(ModelInfo(b.name, b.version, b.card))
        return self._predictor

    def _process(self, job_id: int, path: Path) -> None:
        from busapp.core.imageio import ImageLoadError, load_image

        t0 = time.perf_counter()
        self.job_started.emit(job_id)
        try:
            loaded = load_image(path)
            pixels = loaded.frame(0)
            display = array_to_qimage(pixels)
            sha256 = _sha256_or_none(path)  # here, not on the GUI thread: files can be large
            decoded = DecodedImage(loaded, pixels, display, thumbnail_of(display), sha256)
        except ImageLoadError as e:
            self.job_failed.emit(job_id, str(e), "load")
            return
        except Exception as e:
            log.error("decoding %s failed:\n%s", path.name, traceback.format_exc())
            self.job_failed.emit(job_id, f"{path.name}: the image could not be opened ({type(e).__name__}).", "load")
            return
        self.image_loaded.emit(job_id, decoded)
        if self._stop.is_set():
            return
        predictor = self._ensure_predictor()
        if predictor is None:
            self.job_failed.emit(job_id, f"Not analysed: {self._model_error}", "analysis")
            return
        try:
            analysis = self._analyse(predictor, loaded, pixels, t0, sha256, 0)
        except Exception as e:
            log.error("analysing %s failed:\n%s", path.name, traceback.format_exc())
            self.job_failed.emit(job_id, f"Analysis failed: {type(e).__name__}: {e}", "analysis")
            return
        self._record_audit(analysis, sha256)
        self.result_ready.emit(job_id, analysis)

    def _process_frame(self, job_id: int, loaded: LoadedImage, frame: int, sha256: str | None) -> None:
        """One frame of an opened cine: decode it (lazily, here), show it, analyse it."""
        from busapp.core.imageio import ImageLoadError

        t0 = time.perf_counter()
        try:
            pixels = loaded.frame(frame)
            decoded = DecodedImage(loaded, pixels, array_to_qimage(pixels), QImage(), sha256, frame)
        except ImageLoadError as e:
            self.frame_failed.emit(job_id, frame, str(e))
            return
        except Exception as e:
            log.error("decoding frame %d failed:\n%s", frame, traceback.format_exc())
            self.frame_failed.emit(job_id, frame, f"Frame {frame + 1} could not be decoded ({type(e).__name__}).")
            return
        self.image_loaded.emit(job_id, decoded)
        predictor = self._ensure_predictor()
        if predictor is None:
            self.frame_failed.emit(job_id, frame, f"Not analysed: {self._model_error}")
            return
        try:
            analysis = self._analyse(predictor, loaded, pixels, t0, sha256, frame)
        except Exception as e:
            log.error("analysing frame %d failed:\n%s", frame, traceback.format_exc())
            self.frame_failed.emit(job_id, frame, f"Analysis failed: {type(e).__name__}: {e}")
            return
        self._record_audit(analysis, sha256)
        self.result_ready.emit(job_id, analysis)

    def _analyse(
        self, predictor: Predictor, loaded: LoadedImage, pixels: np.ndarray, t0: float, sha256: str | None, frame: int
    ) -> Analysis:
        from busapp.core.measure import measure_image

        pred = predictor.predict(pixels)
        mask = pred.mask
        if mask.any():
            # The file's own trusted spacing where it covers the lesion, else the user's calibration.
            measurements = measure_image(loaded, mask, sha256, self._calibrations)
            fill, outline = mask_fill_image(mask), mask_outline_path(mask)
        else:
            measurements, fill, outline = None, None, QPainterPath()
        return Analysis(pred, measurements, fill, outline, time.perf_counter() - t0, frame, loaded.n_frames)

    def _record_audit(self, a: Analysis, sha256: str | None) -> None:
        if self._audit is None:
            return
        if sha256 is None:
            self.audit_failed.emit("The file could not be hashed, so this analysis is not in the audit log.")
            return
        details = {"frame": a.frame_index, "frames": a.n_frames} if a.n_frames > 1 else None
        try:
            self._audit.record_analysis(sha256, a.prediction, a.measurements, source="gui", details=details)
        except Exception as e:  # a full disk must not lose the result on screen
            log.error("audit log write failed: %s", e)
            self.audit_failed.emit(f"The audit log could not be written: {e}")


class WorkerThread(QObject):
    """Starts an ``AnalysisWorker`` in its own QThread and shuts both down cleanly."""

    def __init__(
        self,
        bundle_dir: Path | None = None,
        parent: QObject | None = None,
        audit: AuditLog | None = None,
        calibrations: CalibrationStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = AnalysisWorker(bundle_dir, audit=audit, calibrations=calibrations)
        self.thread = QThread()
        self.thread.setObjectName("busapp-analysis")
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self.thread.quit)
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.thread.start(QThread.Priority.LowPriority)  # keep the GUI responsive on 2 cores

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Stop after the current image; True if the thread ended within ``timeout_ms``."""
        self.worker.stop()
        if not self._started:
            return True
        self.thread.quit()
        return self.thread.wait(timeout_ms)
