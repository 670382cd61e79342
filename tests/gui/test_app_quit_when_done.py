"""`busapp --quit-when-done FOLDER` analyses the folder's images before it quits (issue 28, item 12).

The folder is scanned off the GUI thread, so right after the window shows nothing is queued yet:
the app used to find itself "idle" then and quit without analysing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples"


def _run_app(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "busapp", "--print-timings", "--quit-when-done", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def _events(run: subprocess.CompletedProcess) -> list[str]:
    return [line.split()[1] for line in run.stdout.splitlines() if line.startswith("busapp-timing ")]


def test_folder_is_analysed_before_quitting(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("case002.png", "case010.png"):
        shutil.copy(SAMPLES / name, folder / name)
    run = _run_app(tmp_path, str(folder))
    assert run.returncode == 0, run.stderr[-2000:]
    events = _events(run)
    assert "first_result" in events and "all_done" in events, events
    assert events.index("first_result") < events.index("all_done")


def test_empty_folder_quits(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    run = _run_app(tmp_path, str(folder))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "window_shown" in _events(run) and "first_result" not in _events(run)
