"""Tools > Validate on my images: the run happens in the background and ends with the verdict."""

from __future__ import annotations

import json
from pathlib import Path

from busapp.gui.validate_dialog import ValidateDialog


def test_validate_dialog_runs_in_the_background(qtbot, tmp_path: Path, data_root: Path) -> None:
    folder = data_root / "busi"
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nmalignant/malignant (10).png,malignant\nbenign/benign (12).png,benign\n"
                      "normal/normal (1).png,normal\n", encoding="utf-8")
    dlg = ValidateDialog()
    qtbot.addWidget(dlg)
    assert not dlg.run_button.isEnabled()
    dlg.folder_edit.setText(str(folder))
    dlg.labels_edit.setText(str(labels))
    dlg.out_edit.setText(str(tmp_path / "report"))
    assert dlg.run_button.isEnabled()
    with qtbot.waitSignal(dlg.validation_finished, timeout=120_000) as sig:
        dlg.start()
        assert dlg.cancel_button.isEnabled()  # the GUI thread is free while it runs
    paths = sig.args[0]["paths"]
    assert all(Path(p).exists() for p in paths.values())
    assert json.loads(Path(paths["json"]).read_text())["n_images"] == 3
    assert "Not enough images for a verdict" in dlg.status.text()
    assert dlg.open_button.isVisible() or not dlg.isVisible()
    assert not dlg.site_button.isVisibleTo(dlg)  # 3 images justify no site threshold
    qtbot.waitUntil(lambda: not dlg.thread.isRunning(), timeout=10_000)


def test_validate_dialog_names_a_bad_labels_file(qtbot, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\na.png,unsure\n", encoding="utf-8")
    dlg = ValidateDialog()
    qtbot.addWidget(dlg)
    dlg.folder_edit.setText(str(tmp_path))
    dlg.labels_edit.setText(str(labels))
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.start()
    qtbot.waitUntil(lambda: "line 2" in dlg.status.text(), timeout=30_000)
    assert not (tmp_path / "out").exists()


def test_tools_menu_has_validate(window) -> None:
    titles = [a.text() for a in window.tools.tools_menu.actions()]
    assert any("Validate on my images" in t for t in titles)
