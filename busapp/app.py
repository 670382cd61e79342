"""Entry point of the desktop app (``busapp``, ``python -m busapp``).

``--version`` and ``--self-test`` are answered before Qt widgets are imported, so both work on a
machine without a display. Imports stay light until the window is on screen: the model runtime is
imported by the analysis worker, in its own thread, after the window shows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from busapp import APP_NAME, __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=APP_NAME,
        description="Offline decision support for reading breast ultrasound images (not a diagnosis).",
    )
    p.add_argument("files", nargs="*", type=Path, help="images or folders to open and analyse")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--self-test", action="store_true", help="check this installation without a display and exit")
    p.add_argument("--model", type=Path, default=None, metavar="DIR", help="model bundle folder (default: bundled)")
    p.add_argument("--print-timings", action="store_true",
                   help="print wall-clock timestamps (window shown, first result) to stdout, for benchmarks")
    p.add_argument("--quit-when-done", action="store_true",
                   help="quit once every given file is analysed (or right after the window shows, without files)")
    return p


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args_in:
        print(f"{APP_NAME} {__version__}")
        return 0
    if "--self-test" in args_in:
        from busapp.selftest import main as selftest_main

        return int(selftest_main(args_in) or 0)
    # Unknown options (e.g. Qt's -platform) go to QApplication.
    args, qt_args = _parser().parse_known_args(args_in)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _run_gui(args, qt_args)


def _run_gui(args: argparse.Namespace, qt_args: list[str]) -> int:
    t_start = time.time()
    from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Slot
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from busapp.gui.main_window import MainWindow
    from busapp.gui.settings import AppSettings
    from busapp.gui.style import apply_theme
    from busapp.resources import icon_path

    QCoreApplication.setOrganizationName(APP_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    apply_theme(app)
    icon_file = icon_path()
    icon = QIcon(str(icon_file)) if icon_file else QIcon()
    app.setWindowIcon(icon)

    window = MainWindow(AppSettings(), bundle_dir=args.model, icon=icon)

    class Timings(QObject):
        """Prints timestamps for benchmarks/bench_startup.py; quits when asked to."""

        def __init__(self) -> None:
            super().__init__()
            self.exposed = False
            self.first_result = False
            self.quiet_ticks = 0
            self.quit_timer = QTimer(self)
            self.quit_timer.setInterval(100)
            self.quit_timer.timeout.connect(self.maybe_quit)

        def emit(self, what: str) -> None:
            if args.print_timings:
                print(f"busapp-timing {what} {time.time():.6f}", flush=True)

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Expose and not self.exposed and window.windowHandle().isExposed():
                self.exposed = True
                # The expose event paints synchronously; the next loop turn is "on screen".
                QTimer.singleShot(0, self.on_shown)
            return False

        @Slot()
        def on_shown(self) -> None:
            self.emit("window_shown")
            if args.files:
                self.emit("files_opened")
                window.open_paths(args.files)
            if args.quit_when_done:
                self.quit_timer.start()

        @Slot()
        def maybe_quit(self) -> None:
            # Folders are scanned off the GUI thread and their images queued when the scan ends, so
            # "idle" counts only once no scan has run for two ticks (its results are delivered).
            self.quiet_ticks = 0 if _scan_busy(window) else self.quiet_ticks + 1
            if self.quiet_ticks >= 2 and window.is_idle():
                self.quit_timer.stop()
                QTimer.singleShot(0, window.close)

        @Slot(object)
        def on_result(self, _rec: object) -> None:
            if not self.first_result:
                self.first_result = True
                self.emit("first_result")

        @Slot()
        def on_all_done(self) -> None:
            self.emit("all_done")
            if args.quit_when_done:
                self.maybe_quit()

        @Slot(object)
        def on_model_ready(self, _info: object) -> None:
            self.emit("model_ready")

    timings = Timings()
    window.result_ready.connect(timings.on_result)
    window.record_failed.connect(timings.on_result)
    window.all_done.connect(timings.on_all_done)
    window.model_ready.connect(timings.on_model_ready)
    if args.print_timings:
        print(f"busapp-timing main_started {t_start:.6f}", flush=True)
    window.createWinId()  # the QWindow must exist to watch its first expose
    window.windowHandle().installEventFilter(timings)
    window.show()
    code = int(app.exec())
    from busapp.gui.quit import leave

    leave(code)  # quitting must not wait for interpreter teardown (issue 27: <= 0.5 s)
    return code  # pragma: no cover - not reached


def _scan_busy(window: object) -> bool:
    """Whether the window still scans a folder for images (its scan executor's public is_busy())."""
    scanner = getattr(window, "_scanner", None)
    busy = getattr(scanner, "is_busy", None)
    return bool(busy()) if callable(busy) else False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
