"""The desktop app's speed as a reader feels it (issue 27), measured in the app, offscreen Qt.

Sections (``--only`` picks some; each prints its figures and the targets):

* ``next``: a window whose start-up warm-up has run; BUSI images opened one at a time (as one drop
  each; the first is shown apart). End to end = from
  ``open_paths`` to the result shown and the window repainted, with where the time goes per stage
  (decode, hash, display image, thumbnail, preprocess, model, mask post-processing, measurements,
  risk / input checks, audit, overlay, and the GUI thread's share: delivery, panel, paint).
  Target: <= 80 ms each.
* ``batch``: the same folder through ``core.batch.run_batch`` as ``busapp-cli batch`` runs it and
  through the GUI's batch dialog (Start to finished, in the window). Target: GUI within 20 % of CLI.
* ``quit``: a fresh app process is closed (the window's close, as Ctrl+Q) in the middle of
  analysing 60 images and in the middle of a 300-image batch, and leaves as ``busapp.app`` does;
  the figure is close request to process exit. Target: <= 0.5 s.
* ``memory``: a fresh app process opens N BUSI-sized images (hard links, so each is a distinct
  file) and analyses them; RSS after 10, 100, ... images and the peak. Target: peak <= 1 GB at 1,000.
  ``--stand-in-model`` replays the model's first output instead of running it N times (on a shared
  2-core CPU 1,000 real runs take far longer than a benchmark should); everything else is real.

The first image after the window shows is ``benchmarks/bench_startup.py``'s figure.
The CPU is shared (training runs in the background): the load average is printed with the figures.

Run:  .venv/bin/python benchmarks/bench_gui.py [--only next,batch,quit,memory] [-n 30] [--memory-n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def busi_images(n: int) -> list[Path]:
    try:
        from busapp.training.data import default_data_root

        root = default_data_root()
    except Exception:
        root = REPO.parent / "shared" / "datasets"
    files = sorted(p for p in (root / "busi").glob("*/*).png"))
    if not files:
        raise SystemExit(f"BUSI images not found under {root}")
    return [files[i % len(files)] for i in range(n)]


def distinct_copies(files: list[Path], folder: Path) -> list[Path]:
    """Distinct paths (the app opens each path once): hard links where possible, else copies."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(files):
        dst = folder / f"d{i % 10}" / f"{i:04d}_{src.name.replace(' ', '_')}"
        dst.parent.mkdir(exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        out.append(dst)
    return out


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc."""
    cur = peak = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def _app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([sys.argv[0]])


def _window(tmp: Path):
    from PySide6.QtCore import QSettings

    from busapp.core.audit import AuditLog
    from busapp.gui.main_window import MainWindow
    from busapp.gui.settings import AppSettings

    os.environ["BUSAPP_DATA_DIR"] = str(tmp / "data")
    w = MainWindow(AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)),
                   audit=AuditLog(tmp / "audit.jsonl"))
    w.resize(1280, 820)
    w.show()
    return w


def _wait(app, cond, timeout: float = 120.0) -> None:
    """Run the event loop (idle like the app's, not spinning: a spinning loop would take the GIL
    from the worker) until ``cond()``, checked every millisecond."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return
    loop = QEventLoop()
    end = time.perf_counter() + timeout
    timer = QTimer()
    timer.setInterval(1)

    def check() -> None:
        if cond() or time.perf_counter() > end:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if not cond():
        raise SystemExit("timed out waiting")


# -- next image -------------------------------------------------------------------------------------
def bench_next(n: int, profile: bool = False, hold_ms: int | None = None, back_to_back: bool = False) -> None:
    import busapp.core.predictor as predictor_mod
    from busapp.core import preprocess as pre

    model_s: list[float] = []
    prep_s: list[float] = []
    run, prep = predictor_mod.Predictor.run, predictor_mod.preprocess

    def timed_run(self, x):
        t = time.perf_counter()
        try:
            return run(self, x)
        finally:
            model_s.append(time.perf_counter() - t)

    def timed_prep(*a, **k):
        t = time.perf_counter()
        try:
            return prep(*a, **k)
        finally:
            prep_s.append(time.perf_counter() - t)

    predictor_mod.Predictor.run = timed_run
    predictor_mod.preprocess = timed_prep
    assert pre.preprocess is prep
    app = _app()
    with tempfile.TemporaryDirectory(prefix="busapp-bench-gui-") as tmp:
        files = distinct_copies(busi_images(n + 1), Path(tmp, "img"))
        w = _window(Path(tmp))
        if hold_ms is not None:
            w.display_hold_ms = hold_ms
        _wait(app, lambda: w.model_info is not None or w.model_error is not None)
        if w.model_error:
            raise SystemExit(w.model_error)
        _wait(app, lambda: not w.worker_thread.executor.is_busy())  # the idle warm-up has run
        rows = []
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
        for i, f in enumerate(files):
            if prof is not None and i == 1:
                prof.enable()
            if not back_to_back:  # a reader reads each result: the previous image's descriptors are done
                _wait(app, lambda: not w.worker_thread.executor.is_busy())
            model_s.clear()
            prep_s.clear()
            t0 = time.perf_counter()
            (job,) = w.open_paths([f])
            rec = w.record(job)
            _wait(app, lambda rec=rec: rec.finished and w.panel.state in ("result", "error"))
            t_result = time.perf_counter()
            w.repaint()  # paint now: the image, the overlay and the panel on screen
            t_painted = time.perf_counter()
            a = rec.analysis
            t = dict(a.timings)
            t["preprocess"] = sum(prep_s)
            t["model"] = sum(model_s)
            t["mask post-processing"] = t.get("predict", 0.0) - t["preprocess"] - t["model"]
            t["GUI thread: delivery and panel"] = (t_result - t0) - t["worker_total"]
            t["GUI thread: paint"] = t_painted - t_result
            t["end to end"] = t_painted - t0
            rows.append(t)
        first, rows = rows[0], rows[1:]  # the first one after the warm-up: shown apart
        if prof is not None:
            prof.disable()
        w.close()
    if prof is not None:
        import pstats

        print("\nGUI thread, cumulative (open_paths to painted, all images but the first):")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    stages = ["decode", "hash", "display", "thumbnail", "preprocess", "model", "mask post-processing", "measure",
              "risk", "input_check", "audit", "overlay", "GUI thread: delivery and panel", "GUI thread: paint",
              "end to end"]
    print(f"\nnext image: {len(rows)} BUSI images one at a time, warm window, offscreen, image held for its "
          f"result up to {w.display_hold_ms} ms; "
          f"{'dropped back to back' if back_to_back else 'each dropped once the worker is idle'}; {load()}")
    print(f"{'stage':34s} {'median ms':>10s} {'p90 ms':>8s} {'first ms':>9s}")
    for s in stages:
        vals = sorted(r.get(s, 0.0) * 1000 for r in rows)
        if any(vals):
            print(f"{s:34s} {statistics.median(vals):10.1f} {vals[int(0.9 * (len(vals) - 1))]:8.1f} "
                  f"{first.get(s, 0.0) * 1000:9.1f}")
    med = statistics.median(r["end to end"] for r in rows) * 1000
    print(f"target each next image <= 80 ms end to end: median {med:.0f} ms -> {'met' if med <= 80 else 'NOT met'}")


# -- batch ------------------------------------------------------------------------------------------
def bench_batch(n: int) -> None:
    from busapp.core.audit import AuditLog
    from busapp.core.batch import DEFAULT_LANES, lane_predictors, run_batch
    from busapp.core.predictor import Predictor

    app = _app()
    with tempfile.TemporaryDirectory(prefix="busapp-bench-batch-") as tmp:
        folder = Path(tmp, "in")
        distinct_copies(busi_images(n), folder)
        audit = AuditLog(Path(tmp, "audit.jsonl"))
        t = time.perf_counter()  # one interpreter on two threads: the engine before the lanes
        r = run_batch(folder, Path(tmp, "one"), Predictor(), audit=audit, source="batch")
        one = r.analysed / (time.perf_counter() - t)
        t = time.perf_counter()  # what busapp-cli batch runs
        r = run_batch(folder, Path(tmp, "cli"), lane_predictors(), audit=audit, source="batch")
        cli = r.analysed / (time.perf_counter() - t)

        w = _window(Path(tmp))
        _wait(app, lambda: w.model_info is not None)
        w.tools.open_batch()
        dlg = w.tools.batch_dialog
        dlg.set_folder(folder)
        dlg.out_edit.setText(str(Path(tmp, "gui")))
        done: list[object] = []
        dlg.batch_finished.connect(done.append)
        t = time.perf_counter()
        dlg.start()
        _wait(app, lambda: bool(done), timeout=600)
        gui = done[0].analysed / (time.perf_counter() - t)
        w.close()
    print(f"\nbatch: {n} BUSI images (read, hash, decode, model, measure, mask PNG, CSV, audit), model load "
          f"included; {load()}")
    print(f"one lane, 2 threads     {one:6.1f} images/s")
    print(f"CLI engine, {DEFAULT_LANES} lanes x 1  {cli:6.1f} images/s")
    print(f"GUI batch dialog        {gui:6.1f} images/s  ({gui / cli * 100:.0f} % of the CLI)")
    print(f"target GUI within 20 % of the CLI: {'met' if gui >= 0.8 * cli else 'NOT met'}; "
          f">= 40 images/s: CLI {'met' if cli >= 40 else 'NOT met'}, GUI {'met' if gui >= 40 else 'NOT met'}")


# -- quit -------------------------------------------------------------------------------------------
def child_quit(mode: str, folder: Path) -> None:
    from PySide6.QtCore import QTimer

    app = _app()
    w = _window(folder.parent)
    state = {"asked": False}

    def close_now() -> None:
        if not state["asked"]:
            state["asked"] = True
            print(f"closing {time.time():.6f}", flush=True)
            QTimer.singleShot(0, w.close)

    if mode == "analysis":
        w.result_ready.connect(lambda _r: close_now())
        w.open_paths(sorted(folder.rglob("*.png")))
    else:
        def start_batch() -> None:
            w.tools.open_batch()
            dlg = w.tools.batch_dialog
            dlg.set_folder(folder)
            dlg.out_edit.setText(str(folder.parent / "out"))
            dlg.start()
            QTimer.singleShot(0, lambda: _when_progress(dlg))

        def _when_progress(dlg) -> None:
            if dlg.progress_bar.value() >= 5:
                close_now()
            else:
                QTimer.singleShot(10, lambda: _when_progress(dlg))

        w.model_ready.connect(lambda _i: start_batch())
    app.setQuitOnLastWindowClosed(True)
    app.exec()
    print(f"exec_returned {time.time():.6f}", flush=True)
    from busapp.gui.quit import leave

    leave(0)  # as busapp.app does after its event loop


def bench_quit() -> None:
    out = {}
    for mode, n in (("analysis", 60), ("batch", 300)):
        times = []
        for _ in range(2):
            with tempfile.TemporaryDirectory(prefix="busapp-bench-quit-") as tmp:
                folder = Path(tmp, "img")
                distinct_copies(busi_images(n), folder)
                p = subprocess.Popen([sys.executable, __file__, "--child-quit", mode, str(folder)],
                                     stdout=subprocess.PIPE, text=True)
                stamp = returned = None
                for line in p.stdout:
                    if line.startswith("closing "):
                        stamp = float(line.split()[1])
                    elif line.startswith("exec_returned "):
                        returned = float(line.split()[1])
                p.wait(120)
                end = time.time()
                if stamp is None:
                    raise SystemExit(f"quit child ({mode}) printed no close time; exit code {p.returncode}")
                times.append(end - stamp)
                if returned is not None:
                    print(f"  mid-{mode}: window closed and event loop left after {returned - stamp:.2f} s, "
                          f"interpreter exit {end - returned:.2f} s")
        out[mode] = times
    print(f"\nquit (close request -> process exit), 2 runs each; {load()}")
    for mode, times in out.items():
        print(f"mid-{mode:9s} median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    worst = max(max(t) for t in out.values())
    print(f"target <= 0.5 s: {'met' if worst <= 0.5 else 'NOT met'} (worst {worst:.2f} s)")


# -- memory -----------------------------------------------------------------------------------------
def _stand_in_model() -> None:
    """The real interpreter is loaded (its memory counts), but after its first real output every
    call returns a copy of that output: the memory figure is the app's, without waiting for
    1,000 model runs on a shared CPU. Preprocessing, mask post-processing, measurements, checks,
    audit, overlay and the GUI all run for real."""
    import busapp.core.predictor as predictor_mod

    run = predictor_mod.Predictor.run
    cache: dict[str, object] = {}

    def cached_run(self, x):
        if "out" not in cache:
            cache["out"] = run(self, x)
        mask, probs = cache["out"]
        return mask.copy(), probs.copy()

    predictor_mod.Predictor.run = cached_run


def child_memory(folder: Path, marks: list[int], stand_in: bool) -> None:
    if stand_in:
        _stand_in_model()
    app = _app()
    w = _window(folder.parent)
    files = sorted(folder.rglob("*.png"))
    w.open_paths(files)
    report = {}
    done_marks = set()
    t0 = time.perf_counter()
    while len(done_marks) < len(marks):
        app.processEvents()
        done = sum(r.finished for r in w.records())
        for m in marks:
            if m not in done_marks and done >= m:
                done_marks.add(m)
                report[m] = rss_mb()
        time.sleep(0.002)
    report["seconds"] = time.perf_counter() - t0
    w.close()
    print("memory " + json.dumps(report), flush=True)


def bench_memory(n: int, stand_in: bool) -> None:
    marks = [m for m in (10, 100, 1000, n) if m <= n]
    marks = sorted(set(marks))
    with tempfile.TemporaryDirectory(prefix="busapp-bench-mem-") as tmp:
        folder = Path(tmp, "img")
        distinct_copies(busi_images(n), folder)
        cmd = [sys.executable, __file__, "--child-memory", str(folder), ",".join(map(str, marks))]
        r = subprocess.run(cmd + (["--stand-in-model"] if stand_in else []), capture_output=True, text=True,
                           timeout=1800)
        line = next((x for x in r.stdout.splitlines() if x.startswith("memory ")), None)
        if line is None:
            raise SystemExit(f"memory child failed:\n{r.stderr[-3000:]}")
        report = json.loads(line.split(" ", 1)[1])
    model = "model output replayed after its first run (--stand-in-model)" if stand_in else "real model"
    print(f"\nmemory: BUSI-sized images opened and analysed in one window, {model} ({report['seconds']:.0f} s); "
          f"{load()}")
    for m in marks:
        cur, peak = report[str(m)]
        print(f"{m:5d} images open: RSS {cur:7.0f} MB, peak so far {peak:7.0f} MB")
    peak = report[str(marks[-1])][1]
    if n >= 1000:
        print(f"target peak RSS <= 1 GB with 1,000 images: {'met' if peak <= 1024 else 'NOT met'} ({peak:.0f} MB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="next,batch,quit,memory")
    ap.add_argument("-n", type=int, default=30, help="images for 'next' (batch uses 4x)")
    ap.add_argument("--memory-n", type=int, default=1000)
    ap.add_argument("--profile", action="store_true", help="'next': profile the GUI thread")
    ap.add_argument("--back-to-back", action="store_true",
                    help="'next': drop each image as soon as the last is painted, while the worker still works "
                         "out its descriptors (by default each waits until the worker is idle)")
    ap.add_argument("--hold-ms", type=int, default=None,
                    help="'next': MainWindow.display_hold_ms (0: paint each image before its result, as before)")
    ap.add_argument("--stand-in-model", action="store_true",
                    help="'memory': replay the model's first output instead of running it 1,000 times")
    ap.add_argument("--child-quit", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--child-memory", nargs=2, metavar=("FOLDER", "MARKS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_quit:
        child_quit(args.child_quit[0], Path(args.child_quit[1]))
        return 0
    if args.child_memory:
        child_memory(Path(args.child_memory[0]), [int(x) for x in args.child_memory[1].split(",")],
                     args.stand_in_model)
        return 0
    print(f"busapp GUI benchmark: {os.cpu_count()} CPUs, Qt platform {os.environ.get('QT_QPA_PLATFORM')}")
    only = set(args.only.split(","))
    if "next" in only:
        bench_next(args.n, args.profile, args.hold_ms, args.back_to_back)
    if "batch" in only:
        bench_batch(4 * args.n)
    if "quit" in only:
        bench_quit()
    if "memory" in only:
        bench_memory(args.memory_n, args.stand_in_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
