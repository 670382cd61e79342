"""The analysis worker: owns the model and does every per-image job off the GUI thread.

``AnalysisWorker`` runs its jobs on one ``tasks.SerialExecutor`` thread and returns ``Task``s; the
window watches them with a ``qt_tasks.TaskBridge``, which calls it back on the GUI thread. The jobs:

* ``load_model()``: builds the ``core.analysis.Analyzer`` (predictor, calibration store, audit
  log); submitted as the window appears, ahead of any image. ``warm_up()`` then runs LiteRT's
  first (slow) inference and the whole path once on a bundled sample, when no image is waiting
  (an image that arrives stops it), so a drop after that does not pay for first calls.
* ``open(job, path)``: decode, hash (sha256, for calibrations, reports and the audit log), build
  the display image and thumbnail and ``report`` them (the viewer shows the image before the
  model has run), then analyse frame 0 and build the overlay. Returns an ``Analysis``.
* ``analyse_frame(job, loaded, k, sha256)``: the same for frame ``k`` of an opened cine; a newer
  request for the same image supersedes an unstarted one.
* ``restore(...)``: decode an image whose pixels were dropped from memory again, and rebuild its
  overlays from the stored masks (no model run, no audit record: the analysis exists already).

Exceptions are not caught here: they reach the window as exception objects (``errors`` words
them). The analysis itself (model, measurements with a stored calibration, risk, input check,
audit record) is ``Analyzer.analyze``, the one path the CLI and the batch use too. Everything the
GUI thread needs to draw (QImages, the outline path) is built here, so it only wraps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainterPath

from busapp.gui.tasks import SerialExecutor, Task

if TYPE_CHECKING:  # heavy imports (numpy, LiteRT) happen in the worker thread only
    import numpy as np

    from busapp.core.analysis import AnalysisResult, Analyzer
    from busapp.core.audit import AuditLog
    from busapp.core.calipers import ReportPair
    from busapp.core.imageio import LoadedImage
    from busapp.core.measure import CalibrationStore, LesionMeasurements
    from busapp.core.model_card import ModelCard
    from busapp.core.predictor import Prediction

THUMB_SIZE = 104  # 2x the list's 52 px box: sharp on high-dpi screens, ~40 KB per image
LESION_RGB = (255, 200, 61)  # warm yellow: stands out on grey ultrasound, not "alarm" red
# The fill is a paler tone of the outline colour: at the default 50 % opacity it tints the lesion
# without flattening its echo texture, while the saturated outline marks the border.
LESION_FILL_RGB = (240, 214, 150)
PRIORITY_MODEL, PRIORITY_SHOWN, PRIORITY_FILE, PRIORITY_IDLE = 0, 1, 2, 3  # lower runs first
WARMUP_SHAPE = (480, 640)  # about a BUSI image: warms preprocessing and LiteRT's first invoke
STARTED = "started"  # first progress value of an ``open`` task: the file is being read now


@dataclass
class DecodedImage:
    """An image decoded for display: what the GUI shows before (and while) the model runs."""

    loaded: LoadedImage
    pixels: np.ndarray = field(repr=False)  # the displayed frame (for the grey value under the cursor)
    display: QImage = field(repr=False)
    thumbnail: QImage = field(repr=False)  # null for frames other than the first
    sha256: str | None = None  # of the file
    frame_index: int = 0
    timings: dict[str, float] = field(default_factory=dict, repr=False)  # decode, hash, display, thumbnail


@dataclass
class Analysis:
    """The model's output for one image, with the overlay already rendered for Qt."""

    prediction: Prediction
    measurements: LesionMeasurements | None
    fill: QImage | None = field(repr=False)  # RGBA lesion fill at image size; None if the mask is empty
    outline: QPainterPath = field(repr=False)  # lesion outline along pixel edges, image coordinates
    seconds: float = 0.0  # decode + analysis + overlay, on the worker
    frame_index: int = 0  # which frame of a cine the result belongs to
    n_frames: int = 1
    result: AnalysisResult | None = field(default=None, repr=False)  # the core's typed result
    timings: dict[str, float] = field(default_factory=dict, repr=False)  # seconds per stage
    # (the mask it belongs to, the outline's width/depth pair): worked out here, not on the GUI
    # thread; an edited outline (a new mask) makes it stale, and the calipers panel redoes it.
    report_pair: tuple[Any, ReportPair | None] | None = field(default=None, repr=False)

    def report_pair_of(self, mask: Any) -> ReportPair | None:
        """The width/depth pair of ``mask``: the one worked out on the worker if it is that mask's."""
        if self.report_pair is not None and self.report_pair[0] is mask:
            return self.report_pair[1]
        from busapp.core.calipers import report_pair

        return report_pair(mask)

    @property
    def risk(self) -> Any:
        return self.result.risk if self.result is not None else None

    @property
    def input_warnings(self) -> tuple[Any, ...]:
        return self.result.input_warnings if self.result is not None else ()

    @property
    def audit_error(self) -> str | None:
        return getattr(self.result, "audit_error", None)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    card: ModelCard  # typed; also a read-only mapping over the JSON for provenance fields


class ModelUnavailable(Exception):
    """The model could not be loaded, so images are shown but not analysed; the cause is chained."""


def mask_fill_image(mask: np.ndarray, rgb: tuple[int, int, int] = LESION_FILL_RGB) -> QImage:
    import numpy as np

    # Built as the raster pixmap's own format (premultiplied ARGB32, one native uint32 per pixel), so
    # that QPixmap.fromImage on the GUI thread copies it instead of converting every pixel.
    argb = np.zeros(mask.shape, np.uint32)
    argb[mask] = (0xFF << 24) | (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
    h, w = mask.shape
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def overlay_of(mask: np.ndarray) -> tuple[QImage | None, QPainterPath]:
    """The lesion fill image and outline path of a mask (None and an empty path if it is empty)."""
    from busapp.report.render import mask_outline_path

    if not mask.any():
        return None, QPainterPath()
    return mask_fill_image(mask), mask_outline_path(mask)


def thumbnail_of(img: QImage, size: int = THUMB_SIZE) -> QImage:
    return img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def default_analyzer(bundle_dir: Path | None, num_threads: int, calibrations: CalibrationStore | None,
                     audit: AuditLog | None) -> Analyzer:
    """The app's Analyzer: the bundled model, the user's calibration store, the audit log."""
    from concurrent.futures import ThreadPoolExecutor

    from busapp.core.analysis import Analyzer
    from busapp.core.measure import CalibrationStore
    from busapp.core.predictor import Predictor

    store = calibrations if calibrations is not None else CalibrationStore()
    # The input check's statistics run beside the measurements: ~6 ms less from drop to result.
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="busapp-analysis-helper")
    return Analyzer(Predictor(bundle_dir, num_threads=num_threads), calibrations=store, audit=audit, helper=helper)


class _Lap:
    """Seconds per stage, for the panel's timing and ``benchmarks/bench_gui.py``."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.t0


class AnalysisWorker:
    """Owns the Analyzer; every method is called from the GUI thread and returns at once."""

    def __init__(
        self,
        bundle_dir: Path | None = None,
        *,
        audit: AuditLog | None = None,
        calibrations: CalibrationStore | None = None,
        num_threads: int = 2,
        make_analyzer: Callable[[], Analyzer] | None = None,
        source: str = "gui",
    ) -> None:
        self.executor = SerialExecutor("busapp-analysis")
        self._make_analyzer = make_analyzer or (
            lambda: default_analyzer(bundle_dir, num_threads, calibrations, audit))
        self._source = source
        self._analyzer: Analyzer | None = None
        self._model_error: BaseException | None = None

    # -- GUI thread --------------------------------------------------------------------------------
    def load_model(self) -> Task:
        """Load and warm the model now (result: ``ModelInfo``; error: the loading exception)."""
        return self.executor.submit(self._load_model_job, key="model", priority=PRIORITY_MODEL)

    def warm_up(self) -> Task:
        """One unrecorded pass of the whole path on a bundled sample, after any waiting image."""
        return self.executor.submit(self._warm_up_job, key="warm-up", priority=PRIORITY_IDLE)

    def open(self, job_id: int, path: Path, *, priority: int = PRIORITY_FILE) -> Task:
        """Progress: ``STARTED``, then a ``DecodedImage``; result: an ``Analysis``."""
        self.executor.cancel("warm-up")  # stops at its next stage: the user's image goes first
        return self.executor.submit(self._open_job, Path(path), key=("file", job_id), priority=priority)

    def analyse_frame(self, job_id: int, loaded: LoadedImage, frame: int, sha256: str | None) -> Task:
        """Frame ``frame`` of an opened image; supersedes an unstarted request for that image."""
        return self.executor.submit(self._frame_job, loaded, frame, sha256, key=("frame", job_id),
                                    priority=PRIORITY_SHOWN)

    def restore(self, job_id: int, path: Path, sha256: str | None, frame: int,
                masks: dict[int, np.ndarray]) -> Task:
        """Re-decode an evicted image; result: ``(DecodedImage, {frame: (fill, outline)})``."""
        return self.executor.submit(self._restore_job, Path(path), sha256, frame, masks,
                                    key=("file", job_id), priority=PRIORITY_SHOWN)

    def describe(self, analysis: Any, pixels: np.ndarray) -> Task:
        """BI-RADS descriptors of ``analysis``'s outline (result: a list), after the shown image's
        analysis and before other files; a newer request supersedes an unstarted one."""
        from busapp.gui.descriptors_panel import descriptors_for

        return self.executor.submit(lambda _task: descriptors_for(analysis, pixels), key="describe",
                                    priority=PRIORITY_SHOWN)

    def drop_frame_request(self, job_id: int) -> None:
        """The user is back on an analysed frame: an unstarted request for another one is dropped."""
        self.executor.cancel(("frame", job_id), running=False)

    def cancel(self, job_ids: list[int] | set[int]) -> None:
        """These images were closed: their work is dropped, and what is running is not delivered."""
        for j in job_ids:
            self.executor.cancel(("file", j))
            self.executor.cancel(("frame", j))

    def shutdown(self, timeout_s: float = 0.4) -> bool:
        """Cancel everything; True if the running job ended within ``timeout_s`` (daemon thread)."""
        ended = self.executor.shutdown(timeout_s)
        helper = getattr(self._analyzer, "helper", None)
        if helper is not None:
            helper.shutdown(wait=False, cancel_futures=True)
        return ended

    def wait(self, timeout_ms: int = 5000) -> bool:
        """True once the worker thread has ended (after ``shutdown``) or never started."""
        t = self.executor._thread
        if t is None:
            return True
        t.join(timeout_ms / 1000)
        return not t.is_alive()

    @property
    def model_error(self) -> BaseException | None:
        return self._model_error

    # -- worker thread -----------------------------------------------------------------------------
    def _ensure_analyzer(self) -> Analyzer:
        if self._analyzer is None:
            if self._model_error is None:
                try:
                    self._analyzer = self._make_analyzer()
                except Exception as e:
                    self._model_error = e
            if self._model_error is not None:
                raise ModelUnavailable(str(self._model_error)) from self._model_error
        assert self._analyzer is not None
        return self._analyzer

    def _warm_up_job(self, task: Task) -> None:
        """The whole path once on a bundled sample (read, decode, model, measurements, checks,
        overlay): the decoders' and the checks' first calls and the lazy imports cost more than a
        whole later image. No audit record, no calibration lookup: it is not a user's image."""
        import numpy as np

        from busapp.core.imageio import load_image
        from busapp.resources import sample_images

        predictor = getattr(self._ensure_analyzer(), "predictor", None)
        if predictor is None:  # a stand-in analyzer (tests)
            return
        predictor.predict(np.zeros(WARMUP_SHAPE, np.uint8))  # LiteRT's first invoke: several later ones long
        task.check()
        samples = sample_images()
        if not samples:
            overlay_of(np.ones((8, 8), bool))
            return
        from busapp.core.analysis import Analyzer
        from busapp.report.render import array_to_qimage

        loaded = load_image(samples[0])
        thumbnail_of(array_to_qimage(loaded.frame(0)))
        task.check()  # a user's image has arrived: it goes first (and warms the rest itself)
        r = Analyzer(predictor).analyze(loaded, 0, source="warm-up", sha256="0" * 64)
        task.check()
        mask = r.prediction.mask
        if not mask.any():  # still warm the measurements and the overlay
            from busapp.core.measure import measure_lesion

            mask = np.zeros(mask.shape, bool)
            mask[mask.shape[0] // 3: mask.shape[0] // 2, mask.shape[1] // 3: mask.shape[1] // 2] = True
            measure_lesion(loaded, mask)
        overlay_of(mask)

    def _load_model_job(self, task: Task) -> ModelInfo:
        b = self._ensure_analyzer().predictor.bundle
        return ModelInfo(b.name, b.version, b.card)

    def _decode(self, task: Task, loaded: LoadedImage, frame: int, sha256: str | None, lap: _Lap,
                thumbnail: bool) -> DecodedImage:
        from busapp.report.render import array_to_qimage

        pixels = loaded.frame(frame)  # may decode lazily (cine frames)
        lap("decode")
        # RGB32 is what the viewer's pixmap holds: converted here, not on the GUI thread (~1 ms a frame)
        display = array_to_qimage(pixels).convertToFormat(QImage.Format.Format_RGB32)
        lap("display")
        thumb = thumbnail_of(display) if thumbnail else QImage()
        lap("thumbnail")
        return DecodedImage(loaded, pixels, display, thumb, sha256, frame, dict(lap.timings))

    def _analyse(self, task: Task, decoded: DecodedImage, lap: _Lap) -> Analysis:
        task.report(decoded)  # the viewer shows the image now, before the model runs
        analyzer = self._ensure_analyzer()
        task.check()
        lap.last = time.perf_counter()
        r = analyzer.analyze(decoded.loaded, decoded.frame_index, source=self._source, sha256=decoded.sha256)
        for k, v in r.timings.items():
            if k != "total":
                lap.timings[k] = v
        lap.last = time.perf_counter()
        fill, outline = overlay_of(r.prediction.mask)
        lap("overlay")
        from busapp.core.calipers import report_pair

        pair = (r.prediction.mask, report_pair(r.prediction.mask)) if r.prediction.mask is not None else None
        lap("report pair")
        lap.timings["worker_total"] = lap.total
        return Analysis(r.prediction, r.measurements, fill, outline, lap.timings["worker_total"],
                        decoded.frame_index, decoded.loaded.n_frames, r, lap.timings, pair)

    def _open_job(self, task: Task, path: Path) -> Analysis:
        from busapp.core.hashing import sha256_file
        from busapp.core.imageio import load_image

        task.report(STARTED)
        lap = _Lap()
        loaded = load_image(path)
        lap("decode")
        sha256 = sha256_file(path)  # here, not on the GUI thread: files can be large
        lap("hash")
        task.check()
        return self._analyse(task, self._decode(task, loaded, 0, sha256, lap, thumbnail=True), lap)

    def _frame_job(self, task: Task, loaded: LoadedImage, frame: int, sha256: str | None) -> Analysis:
        lap = _Lap()
        return self._analyse(task, self._decode(task, loaded, frame, sha256, lap, thumbnail=False), lap)

    def _restore_job(self, task: Task, path: Path, sha256: str | None, frame: int,
                     masks: dict[int, np.ndarray]) -> tuple[DecodedImage, dict[int, tuple[QImage | None, QPainterPath]]]:
        from busapp.core.hashing import sha256_file
        from busapp.core.imageio import ImageLoadError, load_image

        lap = _Lap()
        loaded = load_image(path)
        if sha256 is not None and sha256_file(path) != sha256:
            raise ImageLoadError(f"{path.name}: the file has changed on disk since it was analysed; "
                                 "close it and open it again.", detail="changed")
        decoded = self._decode(task, loaded, frame, sha256, lap, thumbnail=False)
        overlays = {}
        for k, mask in masks.items():
            task.check()
            overlays[k] = overlay_of(mask)
        return decoded, overlays
