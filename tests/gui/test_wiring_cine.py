"""Multi-frame (cine) DICOM: frame control, stepping analyses the frame shown, per-frame cache, audit."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gui_helpers import RESULT_TIMEOUT_MS, make_cine, wait_all_done
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from busapp.gui.image_list import DONE
from busapp.gui.main_window import MainWindow


def _analyses(data_dir: Path) -> list[dict]:
    lines = (data_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["action"] == "analysis"]


def _shows_frame(window: MainWindow, k: int) -> bool:
    rec = window.current_record()
    return (window.panel.state == "result" and window.panel.shown_frame == k and rec.status == DONE
            and rec.analysis is not None and rec.analysis.frame_index == k)


def test_cine_steps_and_analyses_the_frame_shown(qtbot, window: MainWindow, sample_images, tmp_path: Path,
                                                 monkeypatch, _private_data_dir: Path) -> None:
    cine = make_cine(sample_images[0], tmp_path / "Doe_Jane_12345.dcm", n=5, patient_name="Doe^Jane")
    assert not window.frame_control.isVisible()
    window.open_paths([cine])
    wait_all_done(qtbot, window, n=1)
    rec = window.current_record()
    assert rec.n_frames == 5 and rec.analysis.frame_index == 0
    assert window.frame_control.isVisible() and window.frame_control.n_frames() == 5
    assert "Frame 1 of 5" in window.panel.frame_label.text()
    zoom = window.viewer.zoom()

    window.frame_control.set_frame(3)  # like typing 4 in the spin box
    qtbot.waitUntil(lambda: _shows_frame(window, 3), timeout=RESULT_TIMEOUT_MS)
    assert "Frame 4 of 5" in window.panel.frame_label.text()
    assert "frame 4 of 5" in window.panel.image_info.text()
    assert window.frame_control.slider.value() == 4
    assert window.viewer.zoom() == zoom  # stepping keeps zoom and pan
    assert rec.decoded.frame_index == 3

    # "," steps back (shortcut, from the viewer); ",", "." do not move in the image list.
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Comma)
    qtbot.waitUntil(lambda: _shows_frame(window, 2), timeout=RESULT_TIMEOUT_MS)
    assert window.current_record() is rec

    # Superseded: ask for 1 then at once 4; the panel ends on 4 and 4 is analysed once. Asking for a
    # frame only queues it (decoding and analysis run on the worker): the GUI thread is not held up.
    t0 = time.perf_counter()
    window.cine.select_frame(1)
    window.cine.select_frame(4)
    assert time.perf_counter() - t0 < 0.25
    assert window.panel.state == "pending" and "frame 5" in window.panel.headline.text()
    qtbot.waitUntil(lambda: _shows_frame(window, 4), timeout=RESULT_TIMEOUT_MS)

    # Back to a cached frame: shown at once, not analysed again.
    n_before = len(_analyses(_private_data_dir))
    window.cine.select_frame(3)
    assert _shows_frame(window, 3)
    qtbot.wait(200)
    entries = _analyses(_private_data_dir)
    assert len(entries) == n_before
    frames = [e["details"]["frame"] for e in entries]
    assert frames.count(0) == frames.count(3) == frames.count(2) == frames.count(4) == 1
    assert all(e["sha256"] == rec.sha256 and e["details"]["frames"] == 5 for e in entries)

    # A DICOM's export name is neutral (its file name here holds a patient name) and names the frame.
    proposed: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda p, c="", d="", *a, **k: proposed.append(d) or ("", ""))
    window.exports.report_action.trigger()
    assert Path(proposed[0]).name == f"busapp-report-{rec.sha256[:8]}-frame4.pdf"
