"""``busapp --self-test``: confirm an installation works, without a display.

Loads the model bundle (sha256 checked against its card), runs a prediction on a bundled sample image,
checks the result is sane and repeatable, checks the DICOM decoders and that Qt can start offscreen.
Prints a short report; exit status 0 when every check passes, 1 otherwise (2 for bad arguments).
Run by clinicians and IT departments, and by CI on the built bundle.

Qt-free at import time: ``busapp.app`` calls this before importing any Qt widgets.
Writes nothing anywhere (the DICOM check works in memory), opens no network connection.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from busapp import APP_NAME, __version__

PROB_SUM_TOLERANCE = 1e-3


class CheckFailed(Exception):
    """A self-test check failed; the message says what is wrong, for a user."""


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Context:
    """State shared between checks (later checks use what earlier ones loaded)."""

    model_dir: Path | None
    image_path: Path | None
    predictor: Any = None
    image: Any = None  # the first frame of the sample, as a numpy array
    prediction: Any = None
    qt_app: Any = None  # kept alive until the process ends


def _short(sha: str) -> str:
    return sha[:12] + "..."


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # metadata not bundled: not worth failing over
        return None


# --- checks ---------------------------------------------------------------------------------------


def check_model(ctx: Context) -> str:
    from busapp.core.model_bundle import ModelBundleError, load_bundle

    try:
        bundle = load_bundle(ctx.model_dir, verify=True)
        bundle.verify()  # every file the card lists that is installed (the .keras file is not, in the bundle)
    except ModelBundleError as e:
        raise CheckFailed(str(e)) from e
    checked = [f"{spec.path} ({_short(spec.sha256)})" for role, spec in bundle.card.files.items()
               if bundle.file(role).exists()]  # classes and input size: checked when the card loaded
    return f"{bundle.name} {bundle.version} from {bundle.directory}; sha256 OK: {', '.join(checked)}"


def check_runtime(ctx: Context) -> str:
    from busapp.core.model_bundle import ModelBundleError
    from busapp.core.predictor import Predictor

    frameworks = ("tensorflow", "keras", "torch", "onnxruntime")
    already = {m for m in frameworks if m in sys.modules}  # a host process (pytest) may have them
    t = time.perf_counter()
    try:
        ctx.predictor = Predictor(ctx.model_dir, num_threads=2)
    except ModelBundleError as e:
        raise CheckFailed(str(e)) from e
    dt = time.perf_counter() - t
    # The app must run its models on LiteRT only; loading TensorFlow here means a wrong build or import.
    heavy = sorted(m for m in frameworks if m in sys.modules and m not in already)
    if heavy:
        raise CheckFailed(f"Unexpected frameworks loaded: {', '.join(heavy)} (the app runs on LiteRT only).")
    v = _dist_version("ai-edge-litert")
    return f"LiteRT{f' (ai-edge-litert {v})' if v else ''} interpreter ready in {dt:.2f} s"


def _find_sample(ctx: Context) -> Path:
    from busapp.resources import sample_images, samples_dir

    if ctx.image_path is not None:
        return ctx.image_path
    samples = sample_images()
    if not samples:
        raise CheckFailed(f"No sample image found in {samples_dir()} (the installation is incomplete).")
    return samples[0]


def check_prediction(ctx: Context) -> str:
    import numpy as np

    from busapp.core.imageio import ImageLoadError, load_image

    if ctx.predictor is None:
        raise CheckFailed("Skipped: the model did not load.")
    from busapp.core.analysis import Analyzer

    path = _find_sample(ctx)
    try:
        loaded = load_image(path)
        ctx.image = loaded.frame(0)
    except ImageLoadError as e:
        raise CheckFailed(f"The sample image could not be read: {e}") from e
    t = time.perf_counter()
    # The app's one analysis path (risk, input check, measurements; no audit, no calibration store),
    # so that a data file those read and the bundle lacks fails here, not on a user's first image.
    pred = Analyzer(ctx.predictor).analyze(loaded, 0, source="self-test").prediction
    dt = time.perf_counter() - t
    ctx.prediction = pred
    problems = sanity_problems(pred, ctx.image.shape[:2], ctx.predictor.bundle.classes)
    if problems:
        raise CheckFailed("Implausible result on " + path.name + ": " + "; ".join(problems))
    probs = ", ".join(f"{k} {v:.2f}" for k, v in pred.probabilities.items())
    area = float(np.mean(pred.mask)) * 100
    return (
        f"{path.name} ({ctx.image.shape[1]}x{ctx.image.shape[0]}): {pred.label} ({probs}); "
        f"lesion outline {area:.1f}% of the image; {dt:.2f} s"
    )


def sanity_problems(pred: Any, image_hw: tuple[int, int], classes: tuple[str, ...]) -> list[str]:
    """What is wrong with a Prediction (empty list: nothing). Model-agnostic: no expected label."""
    import numpy as np

    out: list[str] = []
    probs = pred.probabilities
    if tuple(probs) != tuple(classes):
        out.append(f"probabilities are for {list(probs)}, the card lists {list(classes)}")
    values = [float(v) for v in probs.values()]
    if not all(math.isfinite(v) for v in values):
        out.append(f"probabilities are not finite: {values}")
    elif not all(0.0 <= v <= 1.0 for v in values):
        out.append(f"probabilities outside [0, 1]: {values}")
    elif abs(sum(values) - 1.0) > PROB_SUM_TOLERANCE:
        out.append(f"probabilities sum to {sum(values):.4f}, not 1")
    if pred.label not in classes:
        out.append(f"label {pred.label!r} is not one of {list(classes)}")
    elif values and probs.get(pred.label) != max(values):
        out.append(f"label {pred.label!r} is not the most probable class")
    mask = np.asarray(pred.mask)
    if mask.dtype != np.bool_:
        out.append(f"mask is {mask.dtype}, not bool")
    if mask.shape != tuple(image_hw):
        out.append(f"mask is {mask.shape}, the image {tuple(image_hw)}")
    if not isinstance(pred.low_confidence, bool):
        out.append("low_confidence is not a bool")
    return out


def check_repeat(ctx: Context) -> str:
    import numpy as np

    if ctx.prediction is None:
        raise CheckFailed("Skipped: no first prediction.")
    again = ctx.predictor.predict(ctx.image)
    first = ctx.prediction
    if again.label != first.label or again.probabilities != first.probabilities:
        raise CheckFailed(f"A second run gave different probabilities: {first.probabilities} then {again.probabilities}")
    if not np.array_equal(again.mask, first.mask):
        raise CheckFailed("A second run gave a different lesion outline.")
    return "a second run gave an identical result"


# A 16x16 8-bit JPEG lossless SV1 codestream made with GDCM: (x*13 + y*7) % 256. No Python package
# here encodes JPEG lossless, so the check carries one.
_JPEG_LOSSLESS_SV1_16X16 = bytes.fromhex(
    "ffd8ffc3000b080010001001011100ffc400160001010100000000000000000000000000040308ffda0008010100010000cf"
    "ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6"
    "ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6b6ed6b5ad6b5ad6b5ad6e0"
    "cbb5ad6b5ad6b5ad6b5b832ed6b5ad6b5ad6b5adc18dbb5ad6b5ad6b5ad6b70636ed6b5ad6b5ad6b5b831adbb5ad6b5ad6b5"
    "ad6e0c6b6ed6b5ad6b5ad6b70635adffd9"
)


def check_dicom(ctx: Context) -> str:
    """Decode small images through every DICOM codec library the app relies on (in memory, nothing written).

    pydicom finds its decoder plugins by importing optional packages (and pylibjpeg finds its codecs
    through package metadata), which a frozen build can silently lose; GDCM and CharLS are native
    libraries that must load. Each transfer syntax is decoded with each plugin busapp expects for it.
    """
    import numpy as np
    from PIL import Image
    from pydicom import dcmread
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        RLELossless,
        UltrasoundImageStorage,
    )

    from busapp.core.dicom import decoder_plugins

    grad = (np.add.outer(np.arange(40), np.arange(32)) * 3 % 256).astype(np.uint8)
    y, x = np.mgrid[:16, :16]
    sv1 = ((x * 13 + y * 7) % 256).astype(np.uint8)

    def dataset(arr: np.ndarray) -> Dataset:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = UltrasoundImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = arr.tobytes()
        return ds

    def encapsulated(arr: np.ndarray, uid: str, frame: bytes) -> Dataset:
        ds = dataset(arr)
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = uid
        return ds

    def jpeg_baseline() -> Dataset:  # no JPEG encoder in pydicom: let Pillow make the stream
        buf = io.BytesIO()
        Image.fromarray(grad).save(buf, "JPEG", quality=95)
        return encapsulated(grad, JPEGBaseline8Bit, buf.getvalue())

    def compressed(uid: str, plugin: str) -> Callable[[], Dataset]:
        def make() -> Dataset:
            ds = dataset(grad)
            ds.compress(uid, encoding_plugin=plugin)
            return ds

        return make

    # (label, transfer syntax, source pixels, dataset maker, decoding plugins that must work, max pixel error)
    cases = [
        ("JPEG baseline", JPEGBaseline8Bit, grad, jpeg_baseline, ("pillow", "gdcm"), 4),
        ("JPEG lossless", JPEGLosslessSV1, sv1, lambda: encapsulated(sv1, JPEGLosslessSV1, _JPEG_LOSSLESS_SV1_16X16),
         ("gdcm",), 0),
        ("JPEG-LS", JPEGLSLossless, grad, compressed(JPEGLSLossless, "pyjpegls"), ("pyjpegls", "gdcm"), 0),
        ("JPEG 2000", JPEG2000Lossless, grad, compressed(JPEG2000Lossless, "pylibjpeg"), ("pylibjpeg",), 0),
        ("RLE", RLELossless, grad, compressed(RLELossless, "pylibjpeg"), ("pylibjpeg",), 0),
    ]
    done: list[str] = []
    missing: list[str] = []
    for label, uid, arr, make, plugins, tolerance in cases:
        absent = [p for p in plugins if p not in decoder_plugins(uid)]
        if absent:
            missing.append(f"{label}: no {', '.join(absent)} decoder")
            continue
        try:
            f = io.BytesIO()
            make().save_as(f, enforce_file_format=True)
        except Exception as e:  # an encoder lost by freezing: report it, don't crash
            missing.append(f"{label}: could not make the test image ({e})")
            continue
        failed = len(missing)
        for plugin in plugins:
            f.seek(0)
            back = dcmread(f)
            back.pixel_array_options(decoding_plugin=plugin)
            try:
                got = back.pixel_array
            except Exception as e:  # any codec failure is a broken install; report it, don't crash
                missing.append(f"{label}: {plugin} decoding failed ({e})")
                continue
            if got.shape != arr.shape or int(np.abs(got.astype(int) - arr).max()) > tolerance:
                missing.append(f"{label}: {plugin} decoded pixels differ")
        if len(missing) == failed:
            done.append(f"{label} ({'+'.join(plugins)})")
    if "busapp-gdcm12" not in decoder_plugins(JPEGExtended12Bit):
        missing.append("12-bit JPEG: no busapp-gdcm12 decoder")
    if missing:
        raise CheckFailed("DICOM decoding: " + "; ".join(missing))
    return "pydicom decodes " + ", ".join(done) + "; 12-bit JPEG decoder present"


def check_qt(ctx: Context) -> str:
    """Start Qt offscreen and check the plugins the window needs (platform, SVG icon, image formats)."""
    try:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import QLibraryInfo, QSize, qVersion
        from PySide6.QtGui import QGuiApplication, QIcon, QImageReader
    except ImportError as e:
        raise CheckFailed(f"Qt (PySide6) is not installed or incomplete: {e}") from e

    app = QGuiApplication.instance()
    if app is None:
        # The offscreen platform needs no display; keep a reference so Qt is not torn down early.
        app = QGuiApplication([APP_NAME, "-platform", "offscreen"])
    ctx.qt_app = app
    problems = []
    # Where Qt looks for plugins: QT_PLUGIN_PATH (set by PyInstaller's runtime hook when frozen) and its own.
    plugin_dirs = [Path(d) for d in QGuiApplication.libraryPaths()]
    plugin_dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    platforms = sorted(
        {
            p.name.split(".")[0].removeprefix("libq").removeprefix("q")
            for d in plugin_dirs
            for p in (d / "platforms").glob("*")
            if p.is_file()
        }
    )
    native = {"linux": ("xcb", "wayland"), "win32": ("windows",), "darwin": ("cocoa",)}.get(sys.platform, ())
    if native and not any(n in platforms for n in native):
        problems.append(f"no native Qt platform plugin ({' or '.join(native)}) among {platforms}")
    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    for fmt in ("png", "jpg", "svg"):
        if fmt not in formats:
            problems.append(f"Qt cannot read {fmt.upper()} images")
    if sys.platform.startswith("linux") and not _collation_sorts_by_language():
        # The Linux bundle carries a trimmed ICU data library (packaging/icu_data.py): file dialogs
        # sort names with it.
        problems.append("Qt sorts file names without its ICU collation data (ICU data library incomplete)")
    from busapp.resources import icon_path

    icon = icon_path()
    icon_note = "no app icon installed"
    if icon is not None:
        if QIcon(str(icon)).pixmap(QSize(64, 64)).isNull():
            problems.append(f"the app icon {icon.name} does not render")
        else:
            icon_note = f"icon {icon.name} renders"
    if problems:
        raise CheckFailed("; ".join(problems))
    return (
        f"PySide6 {pyside_version} / Qt {qVersion()} started offscreen ({app.platformName()}); "
        f"platform plugins: {', '.join(platforms)}; {icon_note}"
    )


def _collation_sorts_by_language() -> bool:
    """Qt's collator (ICU) sorts numbers by value, ignores case and follows Swedish rules (ä after z)."""
    from functools import cmp_to_key

    from PySide6.QtCore import QCollator, QLocale

    collator = QCollator(QLocale("sv_SE"))
    collator.setNumericMode(True)
    names = sorted(["z", "file10", "äb", "File2", "ab"], key=cmp_to_key(collator.compare))
    return names == ["ab", "File2", "file10", "z", "äb"]


# Audit events that mean a real network access (creating a socket alone is not one: urllib3, if
# installed, probes IPv6 support at import time by binding to ::1).
NETWORK_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                            "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"})
_network_attempts: list[str] = []
_audit_installed = False


def _audit(event: str, args: tuple) -> None:
    if event in NETWORK_EVENTS:
        if event == "socket.connect" and args and getattr(args[0], "family", None) == getattr(socket, "AF_UNIX", None):
            return  # local IPC (X11, D-Bus), not the network
        _network_attempts.append(f"{event} {args[1:2]!r}"[:200])


def check_network(ctx: Context) -> str:
    """Runs last: no check above may have touched the network (the app must work offline)."""
    if _network_attempts:
        raise CheckFailed("network access attempted: " + "; ".join(_network_attempts[:5]))
    return "no network access during the checks"


CHECKS: list[tuple[str, Callable[[Context], str]]] = [
    ("model", check_model),
    ("runtime", check_runtime),
    ("prediction", check_prediction),
    ("repeat", check_repeat),
    ("dicom", check_dicom),
    ("qt", check_qt),
    ("network", check_network),
]


def run_checks(ctx: Context, skip: set[str] | None = None) -> list[CheckResult]:
    skip = skip or set()
    results = []
    for name, fn in CHECKS:
        if name in skip:
            continue
        t = time.perf_counter()
        try:
            detail, ok = fn(ctx), True
        except CheckFailed as e:
            detail, ok = str(e), False
        except Exception as e:  # an unexpected error is a failed check with its type, never a traceback dump
            detail, ok = f"unexpected error: {type(e).__name__}: {e}", False
        results.append(CheckResult(name, ok, detail, time.perf_counter() - t))
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{APP_NAME} --self-test",
        description="Check that this busapp installation works (no display needed). Exit status 0 = passed.",
    )
    p.add_argument("--model", type=Path, default=None, metavar="DIR", help="model bundle folder (default: the installed one)")
    p.add_argument("--image", type=Path, default=None, metavar="FILE", help="image to predict on (default: a bundled sample)")
    p.add_argument("--no-qt", action="store_true", help="skip the Qt check")
    p.add_argument("--no-dicom", action="store_true", help="skip the DICOM codec check")
    return p


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    args_in = list(sys.argv[1:] if argv is None else argv)
    args_in = [a for a in args_in if a != "--self-test"]  # app.py may pass its whole command line
    try:
        args = _parser().parse_args(args_in)
    except SystemExit as e:  # argparse exits on --help / bad options; return its code instead
        return int(e.code or 0)
    out = sys.stdout
    if out is None:  # windowed build on Windows: no console; the exit status still tells
        out = open(os.devnull, "w")  # lives for the process
    from busapp.resources import bundle_root, is_frozen

    where = f"{'bundle' if is_frozen() else 'source'} at {bundle_root()}"
    print(
        f"{APP_NAME} {__version__} self-test ({where}); Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
        file=out,
    )
    global _audit_installed
    if not _audit_installed:  # audit hooks cannot be removed: install once per process
        sys.addaudithook(_audit)
        _audit_installed = True
    _network_attempts.clear()
    ctx = Context(model_dir=args.model, image_path=args.image)
    skip = {n for n, flag in (("qt", args.no_qt), ("dicom", args.no_dicom)) if flag}
    results = run_checks(ctx, skip)
    for r in results:
        print(f"  {'OK  ' if r.ok else 'FAIL'}  {r.name:<10} {r.detail}", file=out)
    failed = [r for r in results if not r.ok]
    dt = time.perf_counter() - t0
    if failed:
        print(
            f"Self-test FAILED ({len(failed)} of {len(results)} checks, {dt:.1f} s): "
            f"{', '.join(r.name for r in failed)}. Reinstall busapp or contact your IT department.",
            file=out,
        )
        out.flush()
        return 1
    print(f"Self-test passed ({len(results)} checks, {dt:.1f} s).", file=out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
