"""Patient and study identity of a DICOM file: shown in the panel and the PDF header, never in
logs, default file names or the audit log."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import drop, wait_all_done
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from busapp.core.patient_identity import PatientIdentity, read_identity

NAME, PID, BIRTH = "ZEBEDEE^QUINTINA", "PIDX98765", "19610214"


def make_patient_dicom(sample: Path, path: Path) -> Path:
    from busapp.core.dicomgen import make_dataset, write_dicom

    img = QImage(str(sample)).convertToFormat(QImage.Format.Format_Grayscale8)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width()]
    ds = make_dataset(a.copy(), patient_name=NAME, patient_id=PID)
    ds.PatientBirthDate = BIRTH
    ds.StudyDate = "20250307"
    ds.ImageLaterality = "L"
    ds.ViewPosition = "RADIAL"
    return write_dicom(ds, path)


def test_read_identity_formats_the_header(tmp_path: Path, sample_images) -> None:
    f = make_patient_dicom(sample_images[0], tmp_path / "x.dcm")
    i = read_identity(f)
    assert i is not None
    assert (i.name, i.patient_id, i.birth_date, i.study_date, i.laterality, i.view) == (
        "ZEBEDEE, QUINTINA", PID, "1961-02-14", "2025-03-07", "left", "RADIAL")
    assert PID not in repr(i) and "ZEBEDEE" not in repr(i)  # never printed by accident
    assert read_identity(sample_images[0]) is None  # a PNG has none
    assert PatientIdentity().empty


def test_identity_shown_in_panel_and_pdf_never_in_logs_names_or_audit(
        qtbot, window, sample_images, tmp_path, monkeypatch, caplog) -> None:
    from pypdf import PdfReader

    caplog.set_level(logging.DEBUG)
    (tmp_path / "study").mkdir()
    f = make_patient_dicom(sample_images[0], tmp_path / "study" / "img0001.dcm")
    drop(window, [f])
    wait_all_done(qtbot, window, n=1)
    strip = window.reader.identity_strip
    assert strip.isVisible()
    shown = strip.texts()
    assert "ZEBEDEE, QUINTINA" in shown and PID in shown and "1961-02-14" in shown
    assert "2025-03-07" in shown and "left" in shown and "RADIAL" in shown
    # PDF: the identity is in its header; the default file name proposed has none of it.
    proposed: list[str] = []
    pdf = tmp_path / "out.pdf"

    def save_dialog(parent, title, suggested, filt):
        proposed.append(suggested)
        return str(pdf), filt

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    window.exports.export_report()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf).pages).split())
    assert "ZEBEDEE, QUINTINA" in text and PID in text and "1961-02-14" in text
    assert text.index(PID) < text.index("SHA-256")  # in the header, above the image
    window.exports.export_mask()
    window.exports.export_overlay()
    assert len(proposed) == 3
    # A reader's assessment and an outline edit go through the audit log and the stores too.
    window.reader.panel.name_edit.setText("Dr C")
    window.reader.panel.accept_button.click()
    assert window.reader.record() is not None
    rec = window.records()[0]
    ed = window.outline_edit.editor(rec)
    ed.paint(20, 20, 60, 20, 5)
    window.outline_edit._apply(rec)
    data_dir = Path(window.audit.path).parent
    stored = "".join(p.read_text(errors="replace") for p in data_dir.rglob("*") if p.is_file())
    logs = caplog.text
    for secret in ("ZEBEDEE", "QUINTINA", PID, BIRTH, "1961-02-14"):
        assert all(secret.lower() not in Path(s).name.lower() for s in proposed), secret
        assert secret not in stored, f"{secret} written to the user's data folder (audit log, stores)"
        assert secret not in logs, f"{secret} in the log"


def test_png_says_there_is_no_patient_identity(qtbot, window, sample_images) -> None:
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    assert "No patient details" in window.reader.identity_strip.texts()
    window.clear_images()
    assert not window.reader.identity_strip.isVisible()


@pytest.mark.parametrize("pn,expected", [("DOE^JANE^M", "DOE, JANE M"), ("Solo", "Solo"), ("", "")])
def test_person_name_formatting(pn: str, expected: str) -> None:
    from busapp.core.patient_identity import _person

    assert _person(pn) == expected


def test_full_report_never_overlaps_its_footer(qapp, tmp_path, sample_images) -> None:
    """Patient header, risk, edited outline and reader's assessment all shown: what does not fit on
    page 1 goes to page 2, which names the patient again; a plain report stays on one page."""
    from pypdf import PdfReader

    from busapp.core.imageio import load_image
    from busapp.core.predictor import Prediction
    from busapp.core.reader import ReaderAssessment
    from busapp.report.pdf import build_report_data, fit_picture_mm, report_pdf_bytes

    f = make_patient_dicom(sample_images[0], tmp_path / "p.dcm")
    li = load_image(f)
    mask = np.zeros((li.height, li.width), bool)
    mask[100:200, 150:300] = True
    pred = Prediction("benign", {"normal": 0.04, "benign": 0.54, "malignant": 0.42}, mask, "busnet", "1", True)
    card = {"metrics": {"test": {k: {"value": 0.8, "ci95": [0.7, 0.9]} for k in (
        "accuracy", "macro_f1", "sensitivity_normal", "sensitivity_benign", "sensitivity_malignant",
        "auc_benign_vs_malignant", "dice_mean")}}}
    a = ReaderAssessment(reader="Dr A", ai_result="rejected", birads="4B", comment="See prior. " * 8,
                         outline_edited=True)
    full = build_report_data(li, pred, None, card, sha256="0" * 64, reader=a, identity=read_identity(f))
    pages = PdfReader(__import__("io").BytesIO(report_pdf_bytes(full))).pages
    assert 1 <= len(pages) <= 2
    texts = [" ".join(pg.extract_text().split()) for pg in pages]
    assert all(PID in t for t in texts)  # every page names the patient
    assert f"page {len(pages)} of {len(pages)}" in texts[-1]
    assert fit_picture_mm(full) >= 50
    plain = build_report_data(load_image(sample_images[0]), pred, None, card, sha256="0" * 64)
    assert len(PdfReader(__import__("io").BytesIO(report_pdf_bytes(plain))).pages) == 1
