"""DICOM exports: Encapsulated PDF and Secondary Capture in the source study, read back by pydicom;
non-DICOM inputs say what is missing; nothing is written over a file busapp did not write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from busapp.core.dicom_export import (
    ENCAPSULATED_PDF_STORAGE,
    SECONDARY_CAPTURE_STORAGE,
    DicomExportError,
    check_dataset,
    encapsulated_pdf,
    missing_for_dicom_export,
    write_dicom_exports,
)
from busapp.core.dicomgen import make_dataset, write_dicom

PDF = b"%PDF-1.4\n% a tiny stand-in report\n%%EOF\n"
SHA = "12345678" + "0" * 56


@pytest.fixture
def source(tmp_path: Path) -> Path:
    ds = make_dataset(np.full((40, 50), 80, np.uint8), patient_name="DOE^JANE", patient_id="P123",
                      pixel_spacing_mm=(0.1, 0.1))
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20250102"
    ds.AccessionNumber = "ACC9"
    return write_dicom(ds, tmp_path / "src.dcm")


def test_exports_are_in_the_source_study_and_read_back(source: Path, tmp_path: Path) -> None:
    src = pydicom.dcmread(source)
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[10:20, 10:30] = (255, 200, 61)
    out = write_dicom_exports(source, PDF, rgb, tmp_path / "out", SHA)
    assert out.report.name == "busapp-report-12345678.dcm" and out.overlay.name == "busapp-overlay-12345678.dcm"
    rep, ov = pydicom.dcmread(out.report), pydicom.dcmread(out.overlay)
    for ds in (rep, ov):
        assert ds.StudyInstanceUID == src.StudyInstanceUID == out.study_instance_uid
        assert (ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == ("DOE^JANE", "P123", "19700101", "F")
        assert ds.AccessionNumber == "ACC9" and ds.StudyDate == "20250102"
        assert ds.SeriesInstanceUID != src.SeriesInstanceUID and ds.SOPInstanceUID != src.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        refs = ds.SourceInstanceSequence if ds.SOPClassUID == ENCAPSULATED_PDF_STORAGE else ds.SourceImageSequence
        assert refs[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert check_dataset(ds) == []
    assert rep.SOPClassUID == ENCAPSULATED_PDF_STORAGE and rep.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(rep.EncapsulatedDocument)[: rep.EncapsulatedDocumentLength] == PDF
    assert rep.SeriesInstanceUID != ov.SeriesInstanceUID
    assert ov.SOPClassUID == SECONDARY_CAPTURE_STORAGE and ov.PhotometricInterpretation == "RGB"
    assert np.array_equal(ov.pixel_array, rgb) and ov.BurnedInAnnotation == "YES"
    # Again into the same folder: the first files are kept, the new ones get other names.
    again = write_dicom_exports(source, PDF, rgb, tmp_path / "out", SHA)
    assert again.report != out.report and out.report.exists() and again.notes
    assert pydicom.dcmread(again.report).SOPInstanceUID != rep.SOPInstanceUID


def test_non_dicom_input_says_what_is_missing(tmp_path: Path, sample_images) -> None:
    with pytest.raises(DicomExportError, match=r"not DICOM.*Study Instance UID"):
        write_dicom_exports(sample_images[0], PDF, np.zeros((4, 4, 3), np.uint8), tmp_path, SHA)
    assert not any(tmp_path.iterdir())
    assert "PDF report instead" in missing_for_dicom_export(sample_images[0])


def test_invalid_objects_are_refused_before_writing(source: Path) -> None:
    src = pydicom.dcmread(source)
    del src.StudyInstanceUID
    with pytest.raises(DicomExportError, match="Study Instance UID"):
        encapsulated_pdf(src, PDF)
    ds = encapsulated_pdf(pydicom.dcmread(source), PDF)
    ds.MIMETypeOfEncapsulatedDocument = ""
    assert "MIMETypeOfEncapsulatedDocument is missing or empty" in check_dataset(ds)
    with pytest.raises(DicomExportError):
        encapsulated_pdf(pydicom.dcmread(source), b"not a pdf")


def _dciodvfy_errors(path: Path) -> list[str]:
    import shutil
    import subprocess

    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian: dicom3tools) is not installed; `make test` installs it where it can")
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def test_exports_pass_the_dicom3tools_validator(source: Path, tmp_path: Path) -> None:
    """dciodvfy (David Clunie's IOD validator) finds no error in either object: it found missing
    Type 2 study attributes, a missing concept name and a reference outside the PDF's IOD."""
    ds = pydicom.dcmread(source)
    ds.ImageLaterality = "L"
    ds.save_as(source)
    out = write_dicom_exports(source, PDF, np.zeros((40, 50, 3), np.uint8), tmp_path / "out", SHA)
    for path in (out.report, out.overlay):
        assert _dciodvfy_errors(path) == [], path.name
    assert pydicom.dcmread(out.overlay).Laterality == "L"


def test_measurements_in_mm_go_into_a_tid1500_sr_the_validator_accepts(source: Path, tmp_path: Path) -> None:
    from busapp.core.dicom_sr import COMPREHENSIVE_SR_STORAGE, LONG_AXIS, SHORT_AXIS
    from busapp.core.measure import LesionMeasurements

    m = LesionMeasurements(area=123.456, area_unit="mm\u00b2", longest_diameter=14.25, perpendicular_diameter=9.5,
                           unit="mm", depth_to_width=0.7, longest_axis=((1, 2), (30, 4)),
                           perpendicular_axis=((10, 1), (12, 20)), spacing_source="DICOM Pixel Spacing")
    out = write_dicom_exports(source, PDF, np.zeros((40, 50, 3), np.uint8), tmp_path / "out", SHA, measurements=m)
    assert out.measurements is not None and out.measurements.name == "busapp-measurements-12345678.dcm"
    sr, src = pydicom.dcmread(out.measurements), pydicom.dcmread(source)
    assert sr.SOPClassUID == COMPREHENSIVE_SR_STORAGE and sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.PatientID == "P123" and sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.VerificationFlag == "UNVERIFIED"  # decision support: nobody signed it

    def walk(items):
        for it in items:
            yield it
            yield from walk(it.get("ContentSequence", []))

    nums = {it.ConceptNameCodeSequence[0].CodeValue: it.MeasuredValueSequence[0] for it in walk(sr.ContentSequence)
            if it.ValueType == "NUM"}
    assert float(nums[LONG_AXIS[0]].NumericValue) == 14.25 and float(nums[SHORT_AXIS[0]].NumericValue) == 9.5
    assert {n.MeasurementUnitsCodeSequence[0].CodeValue for n in nums.values()} == {"mm", "mm2"}
    images = [it for it in walk(sr.ContentSequence) if it.ValueType == "IMAGE"]
    assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert _dciodvfy_errors(out.measurements) == []
    # In pixels: no SR (a PACS would read the number as a size), and the export says why.
    px = LesionMeasurements(**{**m.__dict__, "unit": "px", "area_unit": "px\u00b2", "spacing_source": None})
    out2 = write_dicom_exports(source, PDF, np.zeros((40, 50, 3), np.uint8), tmp_path / "out2", SHA, measurements=px)
    assert out2.measurements is None and any("pixels" in n for n in out2.notes)
