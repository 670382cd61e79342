"""``busapp-cli batch``: clean stdout (one JSON summary), progress on stderr, resume, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from busapp.cli.batch import ProgressBar
from busapp.cli.main import main
from busapp.core.batch import BatchProgress
from busapp.core.wording import duration


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BUSAPP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_batch_command(sample_images: list[Path], tmp_path: Path, data_dir: Path, capsys) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, f in enumerate(sample_images):
        shutil.copyfile(f, folder / ("sub" if i % 2 else ".") / f.name)
    out = tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout holds exactly one JSON object
    assert summary["total"] == summary["analysed"] == len(sample_images)
    assert summary["failed"] == 0 and summary["cancelled"] is False
    assert "[" in captured.err and f"{len(sample_images)}/{len(sample_images)}" in captured.err
    assert "Finished" in captured.err
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(sample_images) and all((out / r["mask"]).exists() for r in rows)
    assert sum(r["file"].startswith("sub/") for r in rows) == len(sample_images) // 2
    # The analyses are in the user's audit log (in the test's data folder).
    log = (data_dir / "audit.jsonl").read_text(encoding="utf-8")
    assert log.count('"action":"analysis"') == len(sample_images) and '"source":"cli"' in log
    # Again: everything is skipped.
    assert main(["batch", str(folder), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] == len(sample_images) and "[" not in captured.err


def test_batch_command_errors(tmp_path: Path, data_dir: Path, capsys) -> None:
    assert main(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    assert main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1


def test_progress_bar_rendering() -> None:
    assert duration(None) == "--:--" and duration(65.4) == "01:05" and duration(3725) == "1:02:05"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(tty, width=10)
    bar.update(BatchProgress(5, 10, 12.0))
    bar.update(BatchProgress(10, 10, 0.0))
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\r[#####.....] 5/10  50%") and "left 00:12" in text
    assert "[##########] 10/10 100%" in text and text.endswith("\n")
    log = io.StringIO()  # not a terminal: a line at the start and per 10 %
    bar = ProgressBar(log)
    for i in range(1, 101):
        bar.update(BatchProgress(i, 100, 1.0))
    assert len(log.getvalue().splitlines()) == 11 and "\r" not in log.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only here")
def test_ctrl_c_cancels_cleanly(data_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, src in enumerate(sorted((data_root / "busi").glob("*/*).png"))[:120]):
        shutil.copyfile(src, folder / f"{i:03d}.png")
    out = tmp_path / "out"
    env = {**os.environ, "BUSAPP_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "busapp.cli.main", "batch", str(folder), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As for a foreground command at a terminal: a shell that starts the test run in the
        # background (`... &`) leaves SIGINT ignored, and the child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # not a terminal: a progress line per 10 %
        if "/120" in line and int(line.split("]")[1].split("/")[0]) >= 12:
            break
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    out_text, err_text = proc.communicate(timeout=60)
    assert proc.returncode == 130, err_text
    summary = json.loads(out_text)
    assert summary["cancelled"] is True and 12 <= summary["analysed"] < 120
    assert "Cancelled after" in err_text
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["analysed"] and all((out / r["mask"]).exists() for r in rows)


def test_batch_refuses_an_output_folder_around_the_images(sample_images: list[Path], tmp_path: Path,
                                                          data_dir: Path, capsys) -> None:
    """Issue 28 item 6: `batch d6/images --out d6` analyses nothing, says why, keeps d6/results.csv."""
    images = tmp_path / "d6" / "images"
    images.mkdir(parents=True)
    shutil.copyfile(sample_images[0], images / sample_images[0].name)
    own = tmp_path / "d6" / "results.csv"
    own.write_text("patient,notes\n1,mine\n")
    for out in (tmp_path / "d6", images):
        assert main(["batch", str(images), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "overlap" in err and "Traceback" not in err and "Errno" not in err
    assert own.read_text() == "patient,notes\n1,mine\n" and not (tmp_path / "d6" / "masks").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("patient,notes\n")
    assert main(["batch", str(images), "--out", str(other)]) == 2
    assert "busapp did not write" in capsys.readouterr().err
    assert (other / "results.csv").read_text() == "patient,notes\n"
