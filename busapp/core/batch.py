"""Batch analysis of a folder (Qt-free): every image, one CSV row each, plus the masks.

Used by the GUI's batch dialog (on its worker thread) and by ``busapp-cli batch``.

* Inputs are only read. Outputs go to ``out_dir``: ``results.csv`` and ``masks/<same sub-folders>/
  <file name>.mask.png`` (the whole file name, so masks are distinct by construction). Every file is
  written atomically (temp file + rename), and the CSV is rewritten whole at checkpoints, so after a
  crash or a cancel the CSV lists exactly the images whose masks are on disk.
* Never a user's file: an ``out_dir`` that is, contains or lies inside the input folder is refused,
  and so is one whose ``results.csv`` busapp did not write (``output_paths.OutputRefused``). A file
  busapp did not write at a mask's name is kept and the mask gets the next free name.
* Resume: a row already in ``results.csv`` for the same relative file, same sha256 and same model
  version, without an error and with its mask present, is kept and the image is skipped.
* Every row is one outcome (a result with its mask, or an error). CSV cells are safe to open in a
  spreadsheet (OWASP): a cell that starts with ``= + - @``, tab or CR gets a leading ``'``, and bytes
  of a file name that are not UTF-8 are shown as ``%XX``. ``file_raw`` holds the exact relative
  path, percent-encoded (``urllib.parse.unquote_to_bytes`` gives its bytes back).
"""

from __future__ import annotations

import csv
import io
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from busapp.core import input_check, risk
from busapp.core.analysis import Analyzer, describe_failure
from busapp.core.atomic import save_mask_png, write_text_atomic
from busapp.core.hashing import sha256_file
from busapp.core.imageio import ImageLoadError, load_image
from busapp.core.imageio import find_images as find_image_files
from busapp.core.measure import CalibrationStore
from busapp.core.output_paths import (
    OutputRefused,
    check_separate_folders,
    claim_output,
    csv_cell,
    describe_os_error,
    fit_name,
    raw_path_field,
    rel_from_raw_field,
    text_safe,
    written_by_busapp,
)
from busapp.core.reader import READER_COLUMNS, AssessmentStore, reader_csv_values

CSV_NAME = "results.csv"
MASK_DIR_NAME = "masks"
MEASURE_COLUMNS = (
    "area",
    "area_unit",
    "longest_diameter",
    "perpendicular_diameter",
    "unit",
    "depth_to_width",
    "spacing_source",
)
# From AnalysisResult: core.risk's cells (risk_band, suspicious "yes"/"no" (empty without a
# validated threshold), threshold, threshold_validated) and the input warnings' codes. Its
# p_malignant is the class column p_malignant already.
RISK_COLUMNS = (*(c for c in risk.CSV_COLUMNS if c != "p_malignant"), "input_warnings")
CHECKPOINT_SECONDS = 2.0

ProgressCallback = Callable[["BatchProgress"], None]


def throttled(
    progress: ProgressCallback, every_s: float = 0.1, clock: Callable[[], float] = time.monotonic
) -> ProgressCallback:
    """``progress`` called at most once per ``every_s``, and always for the first and the last image:
    a GUI that repaints per image at 40+ images/s takes a core's share from the lanes."""
    last = [-float("inf")]

    def report(p: BatchProgress) -> None:
        now = clock()
        if now - last[0] >= every_s or p.done >= p.total:
            last[0] = now
            progress(p)

    return report


def csv_columns(classes: tuple[str, ...]) -> list[str]:
    return [
        "file",
        "label",
        *[f"p_{c}" for c in classes],
        "low_confidence",
        "outline_note",  # why the card's rules withheld the outline (empty: they did not)
        *RISK_COLUMNS,
        *MEASURE_COLUMNS,
        "model_name",
        "model_version",
        "mask",
        "sha256",
        "error",
        *READER_COLUMNS,  # the reader's own assessment (busapp.core.reader), apart from the model's
        "file_raw",  # the exact relative path, percent-encoded
    ]


@dataclass(frozen=True)
class BatchProgress:
    done: int  # images finished (analysed, failed or skipped as already done)
    total: int
    eta_s: float | None  # seconds left, None until there is a first timing
    current: str = ""  # relative path of the image just finished
    skipped: int = 0


@dataclass
class BatchResult:
    total: int
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    csv_path: Path | None = None
    mask_dir: Path | None = None
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)
    not_images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why it was left out)
    renamed: list[str] = field(default_factory=list)  # masks saved under another name, and why

    @property
    def done(self) -> int:
        return self.analysed + self.skipped

    def summary(self) -> str:
        """One sentence for the user."""
        what = f"{self.analysed} analysed, {self.skipped} already done, {self.failed} failed"
        if self.not_images:
            what += f"; {len(self.not_images)} other files were not images"
        if self.renamed:
            what += f"; {len(self.renamed)} masks got another name (files busapp did not write were in the way)"
        if self.cancelled:
            return (
                f"Cancelled after {self.done} of {self.total} images ({what}). The results so far are "
                f"saved in {self.csv_path}; run the batch again on the same folders to resume."
            )
        return f"Finished {self.total} images ({what}). Results: {self.csv_path}"


def find_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files under ``folder`` (recursive, sorted by relative path) and (path, reason) for files
    left out: the core's content-sniffing finder, so the GUI and the batch agree on what an image is."""
    folder = Path(folder)
    found, skipped = find_image_files([folder])
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix()), skipped


def mask_names(rel_paths: list[str]) -> dict[str, str]:
    """Relative image path -> relative mask path ``masks/<folders>/<file name>.mask.png``.

    The whole file name is kept, so distinct images get distinct masks by construction; names are
    made valid UTF-8 (``%XX``) and fitted to the 255-byte limit, and a name already given out
    (compared case-folded, for case-insensitive disks) gets ``-2``, ``-3``...
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for rel in sorted(rel_paths):
        *folders, name = rel.split("/")
        parts = [fit_name(text_safe(f), "") for f in folders]
        base = text_safe(name)
        mask = "/".join([MASK_DIR_NAME, *parts, fit_name(base, ".mask.png")])
        n = 1
        while mask.casefold() in taken:
            n += 1
            mask = "/".join([MASK_DIR_NAME, *parts, fit_name(f"{base}-{n}", ".mask.png")])
        taken.add(mask.casefold())
        out[rel] = mask
    return out


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []  # missing or unreadable: start afresh (the old file is replaced atomically)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """Rows hold the raw relative path in "file"; the CSV gets the spreadsheet-safe text of every cell."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r["file"]):
        w.writerow({**{k: csv_cell(v) for k, v in r.items()}, "file_raw": raw_path_field(r["file"])})
    write_text_atomic(path, buf.getvalue())


def _previous_rows(csv_path: Path) -> dict[str, dict[str, str]]:
    """An earlier run's rows by raw relative path (CSVs before ``file_raw`` are keyed by "file")."""
    out = {}
    for r in read_csv_rows(csv_path):
        rel = rel_from_raw_field(r["file_raw"]) if r.get("file_raw") else r.get("file", "")
        out[rel] = {**r, "file": rel}
    return out


@dataclass
class _Loaded:
    rel: str
    sha256: str | None = None
    image: Any = None
    error: str | None = None
    check_part: input_check.ImagePart | None = None  # the input check's image-only part, done here


def _load(folder: Path, rel: str, done: Callable[[str, str], bool] | None = None) -> _Loaded:
    """Hash the file and decode it, unless ``done(rel, sha256)`` says a previous run covered it."""
    path = folder / rel
    try:
        item = _Loaded(rel, sha256_file(path))  # streamed: a 1 GB DICOM is not held twice
    except OSError as e:
        return _Loaded(rel, error=f"{rel}: cannot be read ({describe_os_error(e)}).")
    if done is not None and done(rel, item.sha256):
        return item
    try:
        item.image = load_image(path)
    except ImageLoadError as e:
        item.error = str(e)
        return item
    except Exception as e:  # a broken file must not stop the batch
        item.error = f"{rel}: cannot be opened ({type(e).__name__})."
        return item
    try:  # on this (reader) thread, while the model runs on the other image: ~6 ms of each image
        item.check_part = input_check.image_part(item.image.frame(0))
    except Exception:  # an image the statistics cannot read: the analysis checks it and says so
        item.check_part = None
    return item


# Two lanes of one LiteRT thread each: two images in the model at once keep both cores busy while
# the other lane's Python work (measurements, checks, audit) runs; one interpreter on two threads
# waited on that work and on the reader (benchmarks/bench_gui.py --only batch measures both).
DEFAULT_LANES = 2


def lane_predictors(bundle_dir: Path | None = None, lanes: int = DEFAULT_LANES, num_threads: int = 1) -> list[Any]:
    """One Predictor per batch lane (``run_batch(predictor=[...])``), each with its own interpreter."""
    from busapp.core.predictor import Predictor

    first = Predictor(bundle_dir, num_threads=num_threads)
    return [first, *(Predictor(first.bundle.directory, num_threads=num_threads) for _ in range(lanes - 1))]


def run_batch(
    folder: Path,
    out_dir: Path,
    predictor: Any = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    resume: bool = True,
    audit: Any = None,
    calibrations: CalibrationStore | None = None,
    source: str = "batch",
) -> BatchResult:
    """Analyse every image under ``folder``; see the module docstring for the outputs.

    ``predictor``: a ``busapp.core.predictor.Predictor``, or a list of them (one lane each, analysing
    images side by side; ``lane_predictors``); None: the default model's lanes.
    ``cancel``: set it from another thread to stop after the current image; what was done is kept.
    ``audit``: an ``AuditLog`` (one record per analysed image plus a batch summary), or None.
    """
    t0 = time.perf_counter()
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    predictors = lane_predictors() if predictor is None else (
        list(predictor) if isinstance(predictor, (list, tuple)) else [predictor])
    cancel = cancel or threading.Event()
    analyzers = [Analyzer(p, calibrations=calibrations, audit=audit) for p in predictors]
    analyzer = analyzers[0]
    bundle = analyzer.bundle
    if any(a.model != analyzer.model for a in analyzers):
        raise ValueError("the batch's lanes must run the same model file")
    columns = csv_columns(bundle.classes)
    csv_path, mask_root = out_dir / CSV_NAME, out_dir / MASK_DIR_NAME
    check_separate_folders(folder, out_dir)
    if os.path.lexists(csv_path) and not written_by_busapp(csv_path):
        raise OutputRefused(
            f"{text_safe(str(csv_path))} exists and busapp did not write it, so busapp will not replace it: "
            "choose another output folder."
        )
    out_dir.mkdir(parents=True, exist_ok=True)

    found, not_images = find_images(folder)
    files = [p.relative_to(folder).as_posix() for p in found]
    masks = mask_names(files)
    reserved = {m.casefold() for m in masks.values()}  # claim_output must not hand out another row's name
    previous = _previous_rows(csv_path) if resume else {}
    rows: dict[str, dict[str, str]] = {}
    result = BatchResult(
        total=len(files),
        csv_path=csv_path,
        mask_dir=mask_root,
        not_images=[(p.relative_to(folder).as_posix(), r) for p, r in not_images],
    )

    # Reading + decoding runs one image ahead on a helper thread (PIL and hashlib release the GIL),
    # overlapping with inference and mask writing on this thread.
    todo: queue.Queue[_Loaded | None] = queue.Queue(maxsize=4)

    def already_done(rel: str, sha256: str) -> bool:
        old = previous.get(rel)
        return (
            old is not None
            and old.get("sha256") == sha256
            and old.get("model_version") == bundle.version
            and not old.get("error")
            and bool(old.get("mask"))
            and (out_dir / old["mask"]).exists()
        )

    def reader() -> None:
        for rel in files:
            if cancel.is_set():
                break
            todo.put(_load(folder, rel, already_done))
        todo.put(None)

    threading.Thread(target=reader, name="busapp-batch-reader", daemon=True).start()

    # Mask PNGs are encoded and fsync'ed on another thread, overlapping with the next inference.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="busapp-batch-writer")
    pending: list[tuple[str, dict[str, str], Future]] = []

    def settle(rel: str, row: dict[str, str], fut: Future) -> None:
        try:
            fut.result()
        except Exception as e:
            reason = describe_os_error(e) if isinstance(e, OSError) else type(e).__name__
            kept = {k: row[k] for k in ("file", "sha256", "model_name", "model_version", *READER_COLUMNS) if k in row}
            row.clear()  # one row, one outcome: no result without its mask
            row.update(kept, error=f"{rel}: the mask could not be written ({reason}).")
        rows[rel] = row

    # Lanes: each analysis takes a free Analyzer; results are taken in file order, so the CSV, the
    # masks' names and the progress read as if one lane had done them all.
    free: queue.Queue[Analyzer] = queue.Queue()
    for a in analyzers:
        free.put(a)

    def analyse_in_lane(item: _Loaded) -> tuple[dict[str, str], np.ndarray | None]:
        a = free.get()
        try:
            return _analyse(item, a, source)
        finally:
            free.put(a)

    lanes = ThreadPoolExecutor(max_workers=len(analyzers), thread_name_prefix="busapp-batch-lane")
    inflight: list[tuple[_Loaded, Future | None]] = []  # None: skipped, a previous run covered it

    def next_outcome() -> tuple[_Loaded, Future | None] | None:
        """The oldest image's outcome, keeping one image per lane in flight; None when all are done."""
        nonlocal reader_done
        while not reader_done and not cancel.is_set() and len(inflight) < len(analyzers) + 1:
            item = todo.get()
            if item is None:
                reader_done = True
                break
            skip = item.sha256 is not None and already_done(item.rel, item.sha256)
            inflight.append((item, None if skip else lanes.submit(analyse_in_lane, item)))
        return inflight.pop(0) if inflight else None

    assessments = AssessmentStore()
    last_checkpoint = time.monotonic()
    worked = 0
    finished = 0
    reader_done = False
    while True:
        # After a cancel, the images already in a lane finish (a few ms) and are kept.
        outcome = next_outcome()
        if outcome is None:
            break
        item, fut = outcome
        rel = item.rel
        if fut is None:
            rows[rel] = {**previous[rel], **reader_csv_values(item.sha256, 0, assessments)}
            reserved.add(previous[rel]["mask"].casefold())
            result.skipped += 1
        else:
            row, mask = fut.result()
            row.update(reader_csv_values(item.sha256, 0, assessments))
            if mask is not None:
                reserved.discard(masks[rel].casefold())
                target, note = claim_output(out_dir / masks[rel], taken=reserved)
                if note:
                    result.renamed.append(note)
                row["mask"] = target.relative_to(out_dir).as_posix()
                fresh = not os.path.lexists(target)  # then never replace a file that appears meanwhile
                pending.append((rel, row, writer.submit(save_mask_png, target, mask, exclusive=fresh)))
            else:
                rows[rel] = row
            result.analysed += 1
            while len(pending) > 4:
                settle(*pending.pop(0))
            worked += 1
        finished += 1
        if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
            while pending:  # a row enters the CSV only once its mask is on disk
                settle(*pending.pop(0))
            _write_csv(csv_path, columns, list(rows.values()))
            last_checkpoint = time.monotonic()
        if progress is not None:
            # ETA from the measured rate of this run (skips are near-free and excluded).
            elapsed = time.perf_counter() - t0
            rate = worked / elapsed if worked and elapsed > 0 else None
            eta = (len(files) - finished) / rate if rate else None
            progress(BatchProgress(finished, len(files), eta, rel, result.skipped))
    if finished < len(files):
        result.cancelled = True
        while not reader_done and todo.get() is not None:  # unblock the reader so it ends
            pass
    lanes.shutdown()
    while pending:
        settle(*pending.pop(0))
    writer.shutdown()
    result.failed = sum(1 for r in rows.values() if r.get("error"))
    _write_csv(csv_path, columns, list(rows.values()))
    result.rows = sorted(rows.values(), key=lambda r: r["file"])
    result.elapsed_s = time.perf_counter() - t0
    if audit is not None:
        audit.record(
            "batch",
            model=analyzer.model.to_json(),
            details={
                "images": result.total,
                "analysed": result.analysed,
                "skipped": result.skipped,
                "failed": result.failed,
                "cancelled": result.cancelled,
            },
            source=source,
        )
    return result


def _analyse(item: _Loaded, analyzer: Analyzer, source: str) -> tuple[dict[str, str], np.ndarray | None]:
    """The CSV row (without the mask column) and the mask to save, or (row with error, None)."""
    bundle = analyzer.bundle
    row: dict[str, str] = {
        "file": item.rel,
        "sha256": item.sha256 or "",
        "model_name": bundle.name,
        "model_version": bundle.version,
        "error": item.error or "",
    }
    if item.error:
        return row, None
    try:
        r = analyzer.analyze(item.image, 0, source=source, sha256=item.sha256, image_part=item.check_part)
    except Exception as e:  # one bad image must not stop the others
        row["error"] = describe_failure(item.rel, e)
        return row, None
    if r.audit_error:  # not in the audit log, so not a result either: the rerun analyses it again
        row["error"] = f"{item.rel}: {r.audit_error}"
        return row, None
    pred = r.prediction
    row["label"] = pred.label
    for c, p in pred.probabilities.items():
        row[f"p_{c}"] = f"{p:.6f}"
    row["low_confidence"] = str(pred.low_confidence).lower()
    row["outline_note"] = pred.outline_note or ""
    if r.risk is not None:
        row.update((k, v) for k, v in r.risk.csv_values().items() if k in RISK_COLUMNS)
    row["input_warnings"] = input_check.warnings_csv(r.input_warnings)
    if r.measurements is not None:
        for k in MEASURE_COLUMNS:
            row[k] = _fmt(getattr(r.measurements, k))
    return row, pred.mask


def mask_of(out_dir: Path, row: dict[str, str]) -> np.ndarray | None:
    """Read back a row's mask as bool (for checks and the GUI)."""
    from PIL import Image

    if not row.get("mask"):
        return None
    with Image.open(Path(out_dir) / row["mask"]) as im:
        return np.asarray(im.convert("L")) > 127
