"""DICOM output a PACS can file: the report as Encapsulated PDF, the overlay as Secondary Capture.

Both go into the source image's study: Study Instance UID, the patient module and the study
module are copied from the source DICOM header; each export gets a new Series Instance UID and SOP
Instance UID (one series per export kind, so a re-export lands beside the first). The overlay
carries burned-in text (caliper labels), which the header says. The tests run dicom3tools' IOD
validator (dciodvfy) on both objects: Type 2 attributes the source lacks are written empty.

For an input that is not DICOM, ``missing_for_dicom_export`` says what a PACS would need and does
not have. Qt-free (pydicom, numpy); writes atomically and never over a file busapp did not write.
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from busapp.core.dicom_sr import COMPREHENSIVE_SR_STORAGE, NoMeasurementsInMm, measurement_report

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
PATIENT_MODULE = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                  "OtherPatientIDsSequence", "PatientAge", "PatientWeight", "PatientSize")
STUDY_MODULE = ("StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                "AccessionNumber", "StudyDescription", "IssuerOfAccessionNumberSequence")
INHERITED = ("SpecificCharacterSet", "InstitutionName")
# Type 2 attributes of the patient and study modules: present in every object, empty where the
# source has no value (dciodvfy reports a missing Type 2 attribute as an error).
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber")
SERIES_NUMBER = {"report": 9901, "overlay": 9902, "measurements": 9903}  # beside, not among, the scanner's series

# Type 1 (must be present, non-empty) attributes checked before anything is written: a dciodvfy-style
# subset for the two IODs, so a broken object is refused here rather than by the PACS.
REQUIRED_COMMON = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality")
REQUIRED = {
    ENCAPSULATED_PDF_STORAGE: (*REQUIRED_COMMON, "MIMETypeOfEncapsulatedDocument", "EncapsulatedDocument", "BurnedInAnnotation", "InstanceNumber"),
    COMPREHENSIVE_SR_STORAGE: (*REQUIRED_COMMON, "ValueType", "ConceptNameCodeSequence", "CompletionFlag",
                               "VerificationFlag", "ContentSequence", "ContentTemplateSequence"),
    SECONDARY_CAPTURE_STORAGE: (*REQUIRED_COMMON, "ConversionType", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData"),
}


class DicomExportError(ValueError):
    """The export cannot be made; the message says why in one sentence."""


@dataclass(frozen=True)
class DicomExport:
    report: Path
    overlay: Path
    study_instance_uid: str
    notes: tuple[str, ...] = ()  # e.g. "x.dcm exists and busapp did not write it, so ..."
    measurements: Path | None = None  # the TID 1500 SR, where the sizes are in mm


def read_source_header(path: Path) -> Any:
    """The source file's header (no pixel data) with pydicom; DicomExportError if it is not DICOM."""
    try:
        import pydicom

        from busapp.core.dicom import looks_like_dicom

        with open(path, "rb") as f:
            if not looks_like_dicom(f.read(132)):
                raise DicomExportError(missing_for_dicom_export(path))
        return pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except DicomExportError:
        raise
    except Exception as e:
        raise DicomExportError(f"{Path(path).name}: the DICOM header could not be read ({type(e).__name__}).") from e


def missing_for_dicom_export(path: Path, source: Any = None) -> str:
    """What a PACS would need to file busapp's output with this image and does not have (one sentence)."""
    name = Path(path).name
    if source is None:
        return (f"{name} is not DICOM: it has no Study Instance UID and no patient module, so a PACS "
                "could not file a DICOM export in the patient's study; export the PDF report instead.")
    missing = [k for k in ("StudyInstanceUID", "PatientID") if not str(source.get(k, "") or "").strip()]
    if missing:
        return f"{name} has no {' and no '.join(missing)}, so a PACS could not file a DICOM export with it."
    return ""


def _base(source: Any, sop_class: str, kind: str, when: _dt.datetime) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from busapp import __version__

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    for k in PATIENT_MODULE + STUDY_MODULE + INHERITED:
        if k in source:
            ds[k] = source[k]
    for k in TYPE2:
        if k not in ds:
            setattr(ds, k, "")
    if not str(ds.get("StudyInstanceUID", "")).strip():
        raise DicomExportError("The source image has no Study Instance UID, so the export has no study to go in.")
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = SERIES_NUMBER[kind]
    ds.InstanceNumber = 1
    ds.SeriesDescription = {"report": "busapp decision-support report", "overlay": "busapp lesion overlay",
                            "measurements": "busapp lesion measurements"}[kind]
    ds.ContentDate = ds.SeriesDate = when.strftime("%Y%m%d")
    ds.ContentTime = ds.SeriesTime = when.strftime("%H%M%S")
    ds.Manufacturer = "busapp"
    ds.SoftwareVersions = __version__
    return ds


def _source_reference(source: Any) -> Any:
    """A reference item (SOP Class and Instance UID) to the source image, or None."""
    from pydicom.dataset import Dataset

    if "SOPInstanceUID" not in source or "SOPClassUID" not in source:
        return None
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return ref


def _laterality(source: Any) -> str:
    """The breast imaged (R / L) from the source's Laterality or Image Laterality; "" if neither says."""
    for k in ("Laterality", "ImageLaterality"):
        v = str(source.get(k, "") or "").strip().upper()
        if v in ("R", "L"):
            return v
    return ""


def encapsulated_pdf(source: Any, pdf: bytes, when: _dt.datetime | None = None) -> Any:
    """An Encapsulated PDF Storage object holding ``pdf`` in ``source``'s study."""
    if not pdf.startswith(b"%PDF"):
        raise DicomExportError("The report is not a PDF.")
    when = when or _dt.datetime.now()
    ds = _base(source, ENCAPSULATED_PDF_STORAGE, "report", when)
    ds.Modality = "DOC"
    ds.ConversionType = "WSD"  # workstation
    ds.BurnedInAnnotation = "YES"  # the report names the patient where the header does
    ds.DocumentTitle = "Breast ultrasound decision-support report"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.ConceptNameCodeSequence = []  # Type 2: no coded document title is claimed
    ref = _source_reference(source)
    if ref is not None:  # the Encapsulated Document module's reference to what it reports on
        ds.SourceInstanceSequence = [ref]
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")  # OB values have even length
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def secondary_capture(source: Any, rgb: np.ndarray, when: _dt.datetime | None = None) -> Any:
    """A Secondary Capture Image Storage object of ``rgb`` (HxWx3 uint8) in ``source``'s study."""
    a = np.ascontiguousarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise DicomExportError("The overlay must be an RGB image of 8 bits per channel.")
    when = when or _dt.datetime.now()
    ds = _base(source, SECONDARY_CAPTURE_STORAGE, "overlay", when)
    ds.Modality = str(source.get("Modality", "") or "OT")
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = "Lesion outline and calipers by busapp (decision support, not a diagnosis)"
    ds.BurnedInAnnotation = "YES"  # caliper labels
    ds.Laterality = _laterality(source)  # Type 2C: the breast is a paired body part
    ds.PatientOrientation = source.get("PatientOrientation", "") or ""  # Type 2C: unknown for a capture
    ref = _source_reference(source)
    if ref is not None:
        ds.SourceImageSequence = [ref]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(a.shape[0]), int(a.shape[1])
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for k in ("PixelSpacing", "SequenceOfUltrasoundRegions"):  # same geometry as the source frame
        if k in source:
            ds[k] = source[k]
    ds.PixelData = a.tobytes()
    return ds


def check_dataset(ds: Any) -> list[str]:
    """Problems that would make a PACS refuse the object: missing type 1 attributes, inconsistent
    pixel data length, file meta out of step with the dataset. Empty when fine."""
    problems = [f"{k} is missing or empty" for k in REQUIRED.get(str(ds.get("SOPClassUID", "")), REQUIRED_COMMON)
                if k not in ds or ds[k].value in (None, "", b"")]
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID"):
        problems.append("the file meta SOP Instance UID differs from the dataset's")
    if "PixelData" in ds:
        expected = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * (int(ds.BitsAllocated) // 8)
        if len(ds.PixelData) != expected + (expected % 2):
            problems.append(f"the pixel data holds {len(ds.PixelData)} bytes, not {expected}")
    return problems


def dataset_bytes(ds: Any) -> bytes:
    import pydicom

    problems = check_dataset(ds)
    if problems:
        raise DicomExportError("The DICOM object is not valid: " + "; ".join(problems) + ".")
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def structured_report(source: Any, measurements: Any, when: _dt.datetime | None = None) -> Any:
    """A Comprehensive SR (TID 1500) of the lesion's measurements in ``source``'s study;
    ``NoMeasurementsInMm`` where they are in pixels."""
    when = when or _dt.datetime.now()
    for k in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID"):
        if not str(source.get(k, "") or "").strip():
            raise DicomExportError(f"The source image has no {k}, so an SR cannot reference it.")
    return measurement_report(source, measurements, _base(source, COMPREHENSIVE_SR_STORAGE, "measurements", when),
                              when, _source_reference(source))


def write_dicom_exports(source_path: Path, pdf: bytes, overlay_rgb: np.ndarray, folder: Path, sha256: str,
                        protected: tuple[Path, ...] = (), measurements: Any = None) -> DicomExport:
    """Write ``busapp-report-<sha8>.dcm``, ``busapp-overlay-<sha8>.dcm`` and, with measurements in
    mm, ``busapp-measurements-<sha8>.dcm`` (an SR) into ``folder`` (names never carry patient
    identifiers; an existing file busapp did not write is never replaced)."""
    from busapp.core.atomic import write_bytes_atomic
    from busapp.core.output_paths import claim_output

    source = read_source_header(source_path)
    missing = missing_for_dicom_export(source_path, source)
    if missing:
        raise DicomExportError(missing)
    when = _dt.datetime.now()
    objects = {"report": encapsulated_pdf(source, pdf, when), "overlay": secondary_capture(source, overlay_rgb, when)}
    notes = []
    try:
        objects["measurements"] = structured_report(source, measurements, when)
    except NoMeasurementsInMm as e:
        notes.append(f"No measurement SR: {e}.")
    data = {k: dataset_bytes(ds) for k, ds in objects.items()}  # all valid before any is written
    taken: set[str] = set()
    paths: dict[str, Path] = {}
    for kind in objects:
        path, note = claim_output(Path(folder) / f"busapp-{kind}-{sha256[:8]}.dcm",
                                  protected=(Path(source_path), *protected), taken=taken)
        write_bytes_atomic(path, data[kind])
        paths[kind] = path
        if note:
            notes.append(note)
    return DicomExport(paths["report"], paths["overlay"], str(source.StudyInstanceUID), tuple(notes),
                       paths.get("measurements"))
