"""The analysis worker: decodes images and runs the model off the GUI thread.

One ``AnalysisWorker`` (a QObject) lives in one QThread and owns the ``Predictor``. The GUI thread
only calls ``submit``/``cancel``/``stop`` (thread-safe, they touch a ``queue.Queue`` and an
``Event``) and receives results as queued signals. Everything the GUI needs to draw (display
QImage, thumbnail, overlay image, outline path) is built here too, so the GUI thread only wraps
ready-made QImages into pixmaps. Every exception is caught and emitted as ``job_failed``: an
uncaught exception in a QThread would only be printed, leaving the image "analysing" for ever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QRectF, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPainterPath

if TYPE_CHECKING:  # heavy imports (numpy, LiteRT) happen in the worker thread only
    import numpy as np

    from busapp.core.imageio import LoadedImage
    from busapp.core.measure import LesionMeasurements
    from busapp.core.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

THUMB_SIZE = 112
LESION_RGB = (255, 200, 61)  # warm yellow: stands out on grey ultrasound, not "alarm" red


@dataclass
class DecodedImage:
    """An image decoded for display: what the GUI shows before (and while) the model runs."""

    loaded: LoadedImage
    pixels: np.ndarray = field(repr=False)  # the displayed frame (for the grey value under the cursor)
    display: QImage = field(repr=False)
    thumbnail: QImage = field(repr=False)


@dataclass
class Analysis:
    """The model's output for one image, with the overlay already rendered for Qt."""

    prediction: Prediction
    measurements: LesionMeasurements | None
    fill: QImage | None = field(repr=False)  # RGBA lesion fill at image size; None if the mask is empty
    outline: QPainterPath = field(repr=False)  # lesion outline along pixel edges, image coordinates
    seconds: float = 0.0  # decode + predict + measure


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    card: dict[str, Any]


def numpy_to_qimage(a: np.ndarray) -> QImage:
    """uint8 HxW grey or HxWx3 RGB -> a QImage that owns its pixels (safe to hand to another thread)."""
    import numpy as np

    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] == 3:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    elif a.ndim == 3 and a.shape[2] == 4:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGBA8888)
    else:
        raise ValueError(f"cannot display an array of shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def mask_fill_image(mask: np.ndarray, rgb: tuple[int, int, int] = LESION_RGB) -> QImage:
    import numpy as np

    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*rgb, 255)
    return numpy_to_qimage(rgba)


def mask_outline_path(mask: np.ndarray) -> QPainterPath:
    """The boundary of a bool mask along pixel edges, as a path (drawn with a cosmetic pen it stays
    crisp at every zoom, unlike a rasterised outline)."""
    import numpy as np

    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.WindingFill)
    for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True):
        path.addRect(QRectF(s, r, e - s, 1))
    return path.simplified()  # union of the row runs -> one closed outline per blob (and holes)


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
    finished = Signal()

    def __init__(self, bundle_dir: Path | None = None, num_threads: int = 2) -> None:
        super().__init__()
        self._bundle_dir = bundle_dir
        self._num_threads = num_threads
        self._queue: queue.Queue[tuple[int, Path] | None] = queue.Queue()
        self._stop = threading.Event()
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self._predictor: Predictor | None = None
        self._model_error: str | None = None

    # -- called from the GUI thread (thread-safe) -----------------------------------------------
    def submit(self, job_id: int, path: Path) -> None:
        self._queue.put((job_id, Path(path)))

    def cancel(self, job_ids: set[int] | list[int]) -> None:
        """Skip these jobs if they have not started yet (e.g. the image was removed from the list)."""
        with self._lock:
            self._cancelled.update(job_ids)

    def stop(self) -> None:
        """Finish the current image, drop the rest of the queue, and return from ``run``."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)

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
                item = self._queue.get()
                if item is None or self._stop.is_set():
                    break
                job_id, path = item
                with self._lock:
                    if job_id in self._cancelled:
                        self._cancelled.discard(job_id)
                        continue
                self._process(job_id, path)
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
            display = numpy_to_qimage(pixels)
            decoded = DecodedImage(loaded, pixels, display, thumbnail_of(display))
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
            self.result_ready.emit(job_id, self._analyse(predictor, loaded, pixels, t0))
        except Exception as e:
            log.error("analysing %s failed:\n%s", path.name, traceback.format_exc())
            self.job_failed.emit(job_id, f"Analysis failed: {type(e).__name__}: {e}", "analysis")

    @staticmethod
    def _analyse(predictor: Predictor, loaded: LoadedImage, pixels: np.ndarray, t0: float) -> Analysis:
        from busapp.core.imageio import spacing_for_mask
        from busapp.core.measure import measure_mask

        pred = predictor.predict(pixels)
        mask = pred.mask
        if mask.any():
            found = spacing_for_mask(loaded, mask)  # mm only where the file's calibration covers the lesion
            spacing, source = found if found is not None else (None, None)
            measurements = measure_mask(mask, spacing, source)
            fill, outline = mask_fill_image(mask), mask_outline_path(mask)
        else:
            measurements, fill, outline = None, None, QPainterPath()
        return Analysis(pred, measurements, fill, outline, time.perf_counter() - t0)


class WorkerThread(QObject):
    """Starts an ``AnalysisWorker`` in its own QThread and shuts both down cleanly."""

    def __init__(self, bundle_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = AnalysisWorker(bundle_dir)
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
