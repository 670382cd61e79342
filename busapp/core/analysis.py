"""The one analysis path: a loaded image in, one typed ``AnalysisResult`` out (Qt-free).

The GUI worker, ``busapp-cli predict`` and ``busapp-cli batch`` (``core/batch.py``) all call
``Analyzer.analyze``; nothing else runs the model on a user's image. One call does, in order:

1. ``predict``: the model on the requested frame (``core.predictor``);
2. ``measure``: the lesion measured with the best pixel size: the file's own trusted spacing, else
   the user's stored calibration of this file (by sha256), when the Analyzer was given the store;
3. ``risk`` / ``input_check``: p(malignant) against the card's validated decision rule
   (``core.risk.assess``; a card without one gives ``suspicious=None``, "no validated threshold")
   and the input warnings (``core.input_check.check``);
4. ``audit``: one audit record (sha256 of the file, model name/version/sha256, outputs), when the
   Analyzer was given an ``AuditLog``. A failed audit write does not lose the result: it is
   returned in ``AnalysisResult.audit_error`` for the caller to show.

``timings`` holds the seconds each stage took. Exceptions from the model or a decoder propagate:
the caller turns them into its own one-line message for that image.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from busapp.core import input_check, risk
from busapp.core.hashing import sha256_file
from busapp.core.input_check import InputWarning
from busapp.core.measure import CalibrationStore, LesionMeasurements, measure_lesion
from busapp.core.model_card import RUNTIME_FILE
from busapp.core.risk import RiskAssessment

if TYPE_CHECKING:
    from busapp.core.audit import AuditLog
    from busapp.core.imageio import LoadedImage
    from busapp.core.predictor import Prediction, Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelIdentity:
    """Which model produced a result: the card's name and version and the sha256 of the model file."""

    name: str
    version: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class AnalysisResult:
    prediction: Prediction
    measurements: LesionMeasurements | None  # None: no outline to measure
    pixel_spacing_mm: tuple[float, float] | None  # (row, col) used for the measurements; None: pixels
    image_sha256: str
    frame: int | None  # the frame analysed of a multi-frame image; None for a single-frame image
    n_frames: int
    risk: RiskAssessment | None  # None only from callers that build a result without the Analyzer
    input_warnings: tuple[InputWarning, ...]
    model: ModelIdentity
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, plus "total"
    audit_error: str | None = None  # one sentence when the audit record could not be written

    @property
    def spacing_source(self) -> str | None:
        """Where the pixel size came from ("DICOM Pixel Spacing", "user calibrated", ...); None: pixels."""
        return self.measurements.spacing_source if self.measurements is not None else None

    @property
    def suspicious(self) -> bool | None:
        """Over the card's validated threshold; None when the card has none."""
        return self.risk.suspicious if self.risk is not None else None

    @property
    def threshold(self) -> float | None:
        return self.risk.threshold if self.risk is not None else None

    def to_json(self) -> dict[str, Any]:
        """The keys ``busapp-cli predict`` prints for an analysed image (no file name, no mask path)."""
        out = self.prediction.to_json()
        out["model"] = self.model.to_json()
        out["suspicious"] = self.suspicious
        out["threshold"] = self.threshold
        out["risk"] = self.risk.to_json() if self.risk is not None else None
        out["input_warnings"] = [w.to_json() for w in self.input_warnings]
        return out


class Analyzer:
    """``Analyzer(predictor, calibrations=store, audit=log).analyze(loaded, frame, source="cli")``.

    Holds no per-image state; not thread-safe across calls (the Predictor is not): one per worker.
    """

    def __init__(
        self,
        predictor: Predictor,
        calibrations: CalibrationStore | None = None,
        audit: AuditLog | None = None,
        helper: Executor | None = None,
    ) -> None:
        self.predictor = predictor
        self.calibrations = calibrations
        self.audit = audit
        # A thread that works out the input check's image statistics while this one measures the
        # outline (the GUI worker's: its other core is idle then); None: in turn, on this thread.
        self.helper = helper
        b = predictor.bundle
        self.model = ModelIdentity(b.name, b.version, b.card.files[RUNTIME_FILE].sha256)

    @property
    def bundle(self) -> Any:
        return self.predictor.bundle

    def analyze(
        self, loaded: LoadedImage, frame: int = 0, *, source: str, sha256: str | None = None,
        image_part: input_check.ImagePart | None = None,
    ) -> AnalysisResult:
        """Analyse ``frame`` of ``loaded``. ``source`` ("gui", "cli", "batch") goes into the audit
        record; ``sha256`` of the file if the caller has it already (else the file is hashed here);
        ``image_part``: the input check's image statistics of that frame, if worked out ahead."""
        timings: dict[str, float] = {}
        t_start = last = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal last
            now = time.perf_counter()
            timings[stage] = now - last
            last = now

        if sha256 is None:
            sha256 = sha256_file(loaded.path)
            lap("hash")
        pixels = loaded.frame(frame)  # may decode lazily (cine frames)
        lap("frame")
        pred = self.predictor.predict(pixels)
        lap("predict")
        part: Future | None = None
        if image_part is None and self.helper is not None:
            part = self.helper.submit(input_check.image_part, pixels)
        measurements, spacing = measure_lesion(loaded, pred.mask, sha256, self.calibrations,
                                               one_region=pred.mask_one_region)
        lap("measure")
        assessment = risk.assess(pred, self.bundle)
        lap("risk")
        if part is not None:
            try:
                image_part = part.result()
            except Exception:  # the check itself says what it cannot read
                image_part = None
        warnings = tuple(input_check.check(pixels, pred, self.bundle, part=image_part))
        lap("input_check")
        n_frames = loaded.n_frames
        result = AnalysisResult(
            prediction=pred,
            measurements=measurements,
            pixel_spacing_mm=spacing,
            image_sha256=sha256,
            frame=frame if n_frames > 1 else None,
            n_frames=n_frames,
            risk=assessment,
            input_warnings=warnings,
            model=self.model,
            timings=timings,
        )
        audit_error = self._record(result, source)
        if self.audit is not None:
            lap("audit")
        timings["total"] = time.perf_counter() - t_start
        return result if audit_error is None else replace(result, audit_error=audit_error)

    def _record(self, r: AnalysisResult, source: str) -> str | None:
        """Write the audit record; the error sentence if that failed (the result itself stands)."""
        if self.audit is None:
            return None
        details = {"frame": r.frame, "frames": r.n_frames} if r.frame is not None else None
        extra: dict[str, Any] = {}
        if r.risk is not None:
            extra["p_malignant"] = round(r.risk.p_malignant, 6)
            extra["suspicious"] = r.suspicious
            extra["risk_band"] = r.risk.band
            extra["threshold_validated"] = r.risk.validated
        if r.input_warnings:
            extra["input_warnings"] = [w.code for w in r.input_warnings]
        try:
            self.audit.record_analysis(
                r.image_sha256, r.prediction, r.measurements, source=source, details=details,
                model_sha256=r.model.sha256, extra_outputs=extra,
            )
        except OSError as e:
            from busapp.core.output_paths import describe_os_error

            log.error("audit log write failed: %s", e)
            return f"The audit log could not be written ({describe_os_error(e)}), so this analysis is not in it."
        except Exception as e:  # e.g. AuditError: a bug, but the result on screen must stand
            log.error("audit record refused: %s", e)
            return f"The audit record of this analysis was refused ({type(e).__name__})."
        return None


def describe_failure(name: str, e: BaseException) -> str:
    """One sentence for an image whose analysis failed unexpectedly (no raw "[Errno N]" text)."""
    if isinstance(e, OSError):
        from busapp.core.output_paths import describe_os_error

        return f"{name}: analysis failed ({describe_os_error(e)})."
    return f"{name}: analysis failed ({type(e).__name__})."
