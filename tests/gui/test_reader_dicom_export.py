"""File > Export to DICOM from the window: both objects in the source study, read back by pydicom;
a PNG input says what is missing and writes nothing."""

from __future__ import annotations

import io

import pydicom
from gui_helpers import drop, wait_all_done
from PySide6.QtWidgets import QMessageBox
from test_reader_identity import PID, make_patient_dicom


def test_export_to_dicom_from_the_window(qtbot, window, sample_images, tmp_path, monkeypatch) -> None:
    from pypdf import PdfReader

    src = make_patient_dicom(sample_images[0], tmp_path / "img.dcm")
    ds = pydicom.dcmread(src)
    ds.PixelSpacing = [0.1, 0.1]  # sizes in mm, so the measurements go into an SR too
    ds.save_as(src)
    drop(window, [src])
    wait_all_done(qtbot, window, n=1)
    assert window.dicom_export.action.isEnabled()
    out = window.dicom_export.export(folder=tmp_path / "pacs")
    assert out is not None
    study = pydicom.dcmread(src).StudyInstanceUID
    rep, ov = pydicom.dcmread(out.report), pydicom.dcmread(out.overlay)
    assert rep.StudyInstanceUID == ov.StudyInstanceUID == study and rep.PatientID == PID
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(rep.EncapsulatedDocument))).pages)
    assert PID in text
    h, w = window.records()[0].decoded.pixels.shape[:2]
    assert ov.pixel_array.shape == (h, w, 3)
    assert PID not in out.report.name and PID not in window.audit.path.read_text()
    # The measurements (in mm: this DICOM's Pixel Spacing) as an SR in the same study.
    m = window.records()[0].analysis.measurements
    assert m.unit == "mm" and pydicom.dcmread(out.measurements).StudyInstanceUID == study
    assert "busapp-measurements" in window.statusBar().currentMessage()
    assert any(e["action"] == "export_dicom" for e in window.audit.entries())


def test_png_input_says_what_is_missing(qtbot, window, sample_images, tmp_path, monkeypatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a, **k: said.append(text))
    drop(window, sample_images[:1])
    wait_all_done(qtbot, window, n=1)
    assert window.dicom_export.export(folder=tmp_path) is None
    assert said and "not DICOM" in said[0] and "Study Instance UID" in said[0]
    assert not any(tmp_path.glob("*.dcm"))
