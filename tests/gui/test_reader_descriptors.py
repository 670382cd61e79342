"""The panel's BI-RADS descriptors: only the validated ones (and orientation) shown, each with how
it is derived, and they follow the reader's edit of the outline at once."""

from __future__ import annotations

from gui_helpers import drop, wait_all_done

from busapp.core.descriptors import AGREEMENT


def test_descriptors_shown_and_follow_the_edit(qtbot, window, sample_images) -> None:
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    dp = window.reader.descriptors_panel
    assert rec.analysis.prediction.mask.any()
    qtbot.waitUntil(lambda: bool(dp.values()))  # worked out on the worker once the result is shown
    shown = dp.values()
    assert set(shown) == {"shape", "orientation", "margin"}  # echo and posterior agree too poorly
    assert "echo pattern (kappa" in dp.note.text() and f"{AGREEMENT['shape'][0]:.2f}" in dp.note.text()
    assert all(dp.grid.itemAt(i).widget().toolTip() for i in range(dp.grid.count()))
    # Replace the outline by a wide disc-like ellipse... then by a tall one: the panel follows.
    h, w = rec.analysis.prediction.mask.shape
    ed = window.outline_edit.editor(rec)
    ed.clear()
    ed.paint(w * 0.5, h * 0.5, w * 0.5, h * 0.5, min(h, w) * 0.2)
    window.outline_edit._apply(rec)
    qtbot.waitUntil(lambda: dp.values().get("shape") == "round")
    assert dp.values()["orientation"] == "parallel"
    assert "reader-edited" in dp.note.text()
    ed.clear()
    ed.paint(w * 0.5, h * 0.3, w * 0.5, h * 0.7, min(h, w) * 0.08)
    window.outline_edit._apply(rec)
    qtbot.waitUntil(lambda: dp.values().get("orientation") == "not parallel")
    ed.clear()
    window.outline_edit._apply(rec)
    qtbot.waitUntil(lambda: "No outline" in dp.note.text())
    assert dp.values() == {}


def test_descriptors_are_worked_out_off_the_gui_thread(qtbot, window, sample_images, monkeypatch) -> None:
    """Issue 27: describing the outline took ~12 ms of each next image on the GUI thread."""
    import threading

    import busapp.gui.descriptors_panel as dp_mod

    threads: list[str] = []
    real = dp_mod.descriptors_for

    def spy(analysis, pixels):
        threads.append(threading.current_thread().name)
        return real(analysis, pixels)

    monkeypatch.setattr(dp_mod, "descriptors_for", spy)
    drop(window, sample_images[:2])
    wait_all_done(qtbot, window, n=2)
    dp = window.reader.descriptors_panel
    qtbot.waitUntil(lambda: bool(dp.values()))
    assert threads and threading.main_thread().name not in threads
    window.image_list.step(1)  # the other image: its own descriptors, not the first one's
    qtbot.waitUntil(lambda: len(threads) >= 2 and bool(dp.values()))
    assert window.reader._descriptors[0] is window.current_record().analysis
