"""File > Export report / mask / overlay through the real menu actions; audit log; errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui_helpers import wait_all_done
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from busapp.gui.main_window import MainWindow


class SaveDialog:
    """Stands in for QFileDialog.getSaveFileName: answers ``answer`` and remembers what was proposed."""

    def __init__(self) -> None:
        self.answer: Path | None = None
        self.proposed: list[str] = []

    def __call__(self, parent, caption: str = "", directory: str = "", *args, **kwargs) -> tuple[str, str]:
        self.proposed.append(directory)
        return (str(self.answer) if self.answer else "", "")


@pytest.fixture
def save_dialog(monkeypatch: pytest.MonkeyPatch) -> SaveDialog:
    d = SaveDialog()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", d)
    return d


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: seen.append(f"{title}: {text}"))
    return seen


def _audit_lines(data_dir: Path) -> list[dict]:
    path = data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_exports_from_the_file_menu(qtbot, window: MainWindow, sample_images, tmp_path: Path, save_dialog,
                                    warnings, _private_data_dir: Path) -> None:
    files = sample_images[:2]
    texts = [a.text().replace("&", "") for a in window.file_menu.actions()]
    assert any("Export report" in t for t in texts) and any("Batch analysis" in t for t in texts)
    assert not window.exports.report_action.isEnabled()  # nothing analysed yet
    window.open_paths(files)
    wait_all_done(qtbot, window, n=2)
    rec = window.records()[0]
    window.image_list.select_job(rec.job_id)
    for a in window.exports.actions:
        assert a.isEnabled()
    assert window.exports.report_action.shortcut().toString() == "Ctrl+E"

    out = tmp_path / "out"
    out.mkdir()
    save_dialog.answer = out / "report"  # no suffix: .pdf is added
    window.exports.report_action.trigger()
    pdf = out / "report.pdf"
    assert pdf.exists(), warnings
    assert Path(save_dialog.proposed[-1]).name == f"{rec.path.stem}-report.pdf"
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages).lower()
    assert window.panel.shown_label and window.panel.shown_label in text
    assert rec.sha256 in text.replace("\n", "")

    # The last output folder is remembered for the next dialog.
    save_dialog.answer = out / "mask.png"
    window.exports.mask_action.trigger()
    assert Path(save_dialog.proposed[-1]).parent == out
    assert Path(save_dialog.proposed[-1]).name == f"{rec.path.stem}-mask.png"
    save_dialog.answer = out / "overlay.png"
    window.exports.overlay_action.trigger()
    h, w = rec.decoded.pixels.shape[:2]
    for name in ("mask.png", "overlay.png"):
        img = QImage(str(out / name))
        assert (img.width(), img.height()) == (w, h), name
    assert not warnings

    entries = _audit_lines(_private_data_dir)
    analyses = [e for e in entries if e["action"] == "analysis"]
    assert sorted(e["sha256"] for e in analyses) == sorted(r.sha256 for r in window.records())  # once each
    assert [e["action"] for e in entries if e["action"].startswith("export")] == [
        "export_report", "export_mask", "export_overlay"]
    assert all(e["sha256"] == rec.sha256 for e in entries if e["action"].startswith("export"))
    raw = (_private_data_dir / "audit.jsonl").read_text(encoding="utf-8")
    for f in files:
        assert f.name not in raw and f.stem not in raw
    assert str(tmp_path) not in raw

    # Help > Audit log shows those records.
    window.tools.audit_action.trigger()
    dlg = window.tools.audit_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.table.rowCount() == len(entries)
    dlg.close()


def test_export_error_is_reported_and_the_app_continues(qtbot, window: MainWindow, sample_images, tmp_path: Path,
                                                        save_dialog, warnings, _private_data_dir: Path) -> None:
    window.open_paths(sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    save_dialog.answer = blocker / "report.pdf"
    window.exports.report_action.trigger()
    assert len(warnings) == 1 and "could not be saved" in warnings[0]
    assert not any(e["action"].startswith("export") for e in _audit_lines(_private_data_dir))
    save_dialog.answer = None  # cancelled dialog: nothing happens
    window.exports.mask_action.trigger()
    assert len(warnings) == 1
    assert window.panel.state == "result"
