"""The batch dialog: runs on its worker thread, shows progress, cancels cleanly, resumes."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from busapp.core.audit import AuditLog
from busapp.gui.batch_dialog import BatchDialog


@pytest.fixture(scope="module")
def predictor():
    from busapp.core.predictor import Predictor

    return Predictor()


@pytest.fixture
def folder(sample_images: list[Path], tmp_path: Path) -> Path:
    d = tmp_path / "images"
    for i in range(80):
        src = sample_images[i % len(sample_images)]
        dst = d / f"s{i % 4}" / f"{i:03d}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return d


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_batch_dialog_cancel_and_resume(qtbot, folder: Path, tmp_path: Path, predictor) -> None:
    out = tmp_path / "out"
    dlg = BatchDialog(None, audit=AuditLog(tmp_path / "audit.jsonl"), predictor=predictor)
    qtbot.addWidget(dlg)
    dlg.show()
    assert not dlg.start_button.isEnabled()
    dlg.set_folder(folder)
    assert dlg.out_edit.text()  # a default output folder beside the images is proposed
    dlg.out_edit.setText(str(out))
    assert dlg.start_button.isEnabled() and not dlg.cancel_button.isEnabled()

    with qtbot.waitSignal(dlg.batch_finished, timeout=180_000) as blocker:  # a shared, busy CPU
        dlg.start()
        assert dlg.is_running() and dlg.cancel_button.isEnabled() and not dlg.start_button.isEnabled()
        qtbot.waitUntil(lambda: dlg.progress_bar.value() >= 10, timeout=30_000)
        assert "of 80 images" in dlg.time_label.text()
        dlg.cancel()
    first = blocker.args[0]
    assert first.cancelled and 10 <= first.done < 80
    assert "Cancelled" in dlg.status_label.text()
    assert len(rows(out)) == first.done
    assert dlg.start_button.isEnabled() and dlg.open_button.isEnabled()

    with qtbot.waitSignal(dlg.batch_finished, timeout=180_000) as blocker:  # a shared, busy CPU
        dlg.start()
    second = blocker.args[0]
    assert not second.cancelled and second.skipped == first.done and second.done == 80
    assert dlg.progress_bar.value() == 80 and "Finished 80 images" in dlg.status_label.text()
    assert len(rows(out)) == 80
    dlg.close()
    assert dlg.is_stopped()


def test_batch_dialog_reports_a_bad_folder(qtbot, tmp_path: Path, predictor) -> None:
    dlg = BatchDialog(None, folder=tmp_path / "nope", out_dir=tmp_path / "out", predictor=predictor)
    qtbot.addWidget(dlg)
    dlg.start()
    assert not dlg.is_running() and "not a folder" in dlg.status_label.text()
    dlg.close()
