"""Exports never replace an open image or a file busapp did not write (issue 28 item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gui_helpers import wait_all_done
from PySide6.QtWidgets import QFileDialog, QMessageBox

from busapp.core.atomic import save_mask_png
from busapp.gui.exports import export_refusal


def test_export_refusal_rules(tmp_path: Path) -> None:
    image = tmp_path / "scan.png"
    save_mask_png(image, np.zeros((4, 4), bool))  # even a busapp-made PNG, once it is an open image
    foreign = tmp_path / "notes.png"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    ours = tmp_path / "old-mask.png"
    save_mask_png(ours, np.ones((4, 4), bool))
    report = tmp_path / "old-report.pdf"
    report.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Creator (\xfe\xff" + "busapp 1.0".encode("utf-16-be") + b") >>\n")
    assert "open in busapp" in export_refusal(image, [image])
    assert "did not write" in export_refusal(foreign, [image])
    assert export_refusal(ours, [image]) is None and export_refusal(report, []) is None
    assert export_refusal(tmp_path / "new.png", [image]) is None


def test_export_onto_the_input_image_is_refused(qtbot, make_window, sample_images, tmp_path: Path,
                                                 monkeypatch) -> None:
    src = tmp_path / "x.png"
    src.write_bytes(sample_images[0].read_bytes())
    before = src.read_bytes()
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: warnings.append(text))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(src), ""))
    window = make_window()
    window.open_paths([src])
    wait_all_done(qtbot, window, n=1)
    window.image_list.select_job(window.records()[0].job_id)
    window.exports.mask_action.trigger()
    window.exports.overlay_action.trigger()
    assert src.read_bytes() == before
    assert len(warnings) == 2 and all("never replaces" in w for w in warnings)
