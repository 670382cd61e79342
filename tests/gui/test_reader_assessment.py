"""The reader's assessment: checked, stored by sha256, in the audit log (no free text), the PDF
(pypdf text, its own section) and the batch CSV's reader columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_helpers import drop, wait_all_done
from PySide6.QtWidgets import QFileDialog

from busapp.core.audit import READER_ASSESSMENT, AuditLog
from busapp.core.reader import (
    READER_COLUMNS,
    AssessmentError,
    AssessmentStore,
    ReaderAssessment,
    reader_csv_values,
)

SHA = "0f" * 32


def test_assessment_is_checked_and_says_what_is_missing() -> None:
    with pytest.raises(AssessmentError, match="name"):
        ReaderAssessment(reader="  ", ai_result="accepted", birads="3")
    with pytest.raises(AssessmentError, match="BI-RADS"):
        ReaderAssessment(reader="Dr A", ai_result=None, birads="6")
    with pytest.raises(AssessmentError, match="empty"):
        ReaderAssessment(reader="Dr A", ai_result=None, birads=None)
    a = ReaderAssessment(reader="  Dr   A ", ai_result="rejected", birads="4b", comment=" see prior ")
    assert (a.reader, a.birads, a.comment) == ("Dr A", "4B", "see prior")
    assert a.assessed_at.endswith("+00:00")


def test_store_round_trip_and_csv_columns(tmp_path: Path) -> None:
    store = AssessmentStore(tmp_path)
    assert reader_csv_values(SHA, 0, store) == dict.fromkeys(READER_COLUMNS, "")
    a = ReaderAssessment(reader="Dr A", ai_result="accepted", birads="3", comment="stable", frame=2)
    store.put(SHA, a)
    assert store.get(SHA, 2) == a and store.get(SHA, 0) is None
    row = reader_csv_values(SHA, 2, store)
    assert row["reader_birads"] == "3" and row["reader_ai_result"] == "accepted" and row["reader_name"] == "Dr A"
    (tmp_path / f"{SHA}.json").write_text("{not json")
    assert store.get(SHA, 2) is None  # damaged: no assessment, no crash


def test_audit_record_has_no_comment_text(tmp_path: Path) -> None:
    from busapp.core.reader import record_assessment

    log = AuditLog(tmp_path / "audit.jsonl")
    a = ReaderAssessment(reader="Dr A", ai_result="rejected", birads="5", comment="Mrs Jane Doe, ID 12345/6")
    record_assessment(log, SHA, a, {"name": "busnet", "version": "1"})
    (e,) = list(log.entries())
    assert e["action"] == READER_ASSESSMENT and e["outputs"]["birads"] == "5"
    assert e["outputs"]["ai_result"] == "rejected" and len(e["outputs"]["comment_sha256"]) == 64
    raw = (tmp_path / "audit.jsonl").read_text()
    assert "Jane" not in raw and "12345" not in raw


@pytest.fixture
def shown(qtbot, window, sample_images):
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    rec = window.records()[0]
    assert rec.analysis is not None
    return window, rec


def _fill(w, name="Dr Ada Reader", birads="4B", comment="Irregular margin; biopsy.") -> None:
    p = w.reader.panel
    p.name_edit.setText(name)
    p.reject_button.click()
    p.birads.setCurrentIndex(p.birads.findData(birads))
    p.comment.setPlainText(comment)


def test_recorded_in_the_audit_log_and_restored(qtbot, shown, make_window, settings_file) -> None:
    w, rec = shown
    p = w.reader.panel
    p.name_edit.setText("")
    p.accept_button.click()
    p.record_button.click()
    assert "name" in p.status.text()  # refused, with the reason
    assert not [e for e in w.audit.entries() if e["action"] == READER_ASSESSMENT]
    _fill(w)
    p.record_button.click()
    assert p.status.text().startswith("Recorded by Dr Ada Reader")
    (e,) = [e for e in w.audit.entries() if e["action"] == READER_ASSESSMENT]
    assert e["sha256"] == rec.sha256 and e["outputs"]["birads"] == "4B" and e["outputs"]["ai_result"] == "rejected"
    assert "biopsy" not in w.audit.path.read_text()
    # Another image shown and back: the form is refilled from the store; the name is remembered.
    w.clear_images()
    assert not p.record_button.isEnabled()
    w2 = make_window(settings_path=settings_file)
    assert w2.reader.panel.name_edit.text() == "Dr Ada Reader"
    drop(w2, [rec.path])
    wait_all_done(qtbot, w2, n=1)
    p2 = w2.reader.panel
    assert p2.reject_button.isChecked() and p2.birads.currentData() == "4B"
    assert p2.comment.toPlainText() == "Irregular margin; biopsy."


def test_pdf_has_the_readers_section_apart_from_the_model(qtbot, shown, tmp_path, monkeypatch) -> None:
    from pypdf import PdfReader

    w, rec = shown
    pdf = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(pdf), ""))
    w.exports.export_report()
    text = " ".join(" ".join(pg.extract_text() for pg in PdfReader(pdf).pages).split())
    assert "Reader's assessment" not in text  # no section without an assessment
    assert "edited by reader" not in text.lower()
    # Edit the outline and record an assessment: both reach the PDF, under the reader's heading.
    mask = rec.analysis.prediction.mask
    ed = w.outline_edit.editor(rec)
    h, wd = mask.shape
    ed.paint(0.2 * wd, 0.2 * h, 0.4 * wd, 0.2 * h, 6)
    w.outline_edit._apply(rec)
    _fill(w)
    assert w.reader.record() is not None
    w.exports.export_report()
    text = " ".join(" ".join(pg.extract_text() for pg in PdfReader(pdf).pages).split())
    reader_part = text[text.index("Reader's assessment"):]
    model_part = text[: text.index("Reader's assessment")]
    assert "Dr Ada Reader" in reader_part and "4B" in reader_part and "rejected" in reader_part
    assert "Irregular margin; biopsy." in reader_part
    assert "Dr Ada Reader" not in model_part
    assert "Outline edited by reader" in text


def test_batch_csv_has_the_readers_columns(tmp_path: Path, sample_images, bundle_dir) -> None:
    from busapp.core.batch import read_csv_rows, run_batch
    from busapp.core.hashing import sha256_file
    from busapp.core.predictor import Predictor

    folder = tmp_path / "in"
    folder.mkdir()
    for s in sample_images[:2]:
        (folder / s.name).write_bytes(s.read_bytes())
    first = folder / sample_images[0].name
    AssessmentStore().put(sha256_file(first), ReaderAssessment(reader="Dr B", ai_result="accepted", birads="2"))
    res = run_batch(folder, tmp_path / "out", Predictor(bundle_dir))
    rows = {r["file"]: r for r in read_csv_rows(res.csv_path)}
    assert rows[first.name]["reader_birads"] == "2" and rows[first.name]["reader_name"] == "Dr B"
    other = rows[sample_images[1].name]
    assert all(other[c] == "" for c in READER_COLUMNS)
    assert np.isfinite(float(rows[first.name][f"p_{rows[first.name]['label']}"]))  # the model's columns stay
