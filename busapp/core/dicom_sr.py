"""The lesion measurements as a DICOM Structured Report (TID 1500 Measurement Report), beside the
PDF and the overlay, so that a PACS or a reporting system can read the numbers themselves.

One Comprehensive SR object in the source image's study: the observer is busapp (a device), the
procedure breast ultrasound, the image library the source image, and one measurement group for the
outlined lesion (TID 1501): its tracking identifier, the finding "mass", and the longest diameter,
the diameter at right angles to it and the area, in mm / mm2 (UCUM). Written only where the sizes
are in mm (a trusted pixel size): a PACS reads an SR number as a physical size, and busapp never
guesses one. The model's malignancy assessment is not coded here: it is decision support, in the
PDF with its wording, not a finding.

Checked before writing by ``dicom_export.check_dataset`` and in the tests by dicom3tools' IOD
validator (dciodvfy). Qt-free (pydicom).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

COMPREHENSIVE_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"

# (code value, coding scheme, meaning)
REPORT = ("126000", "DCM", "Imaging Measurement Report")
LANGUAGE = ("121049", "DCM", "Language of Content Item and Descendants")
ENGLISH = ("en-US", "RFC5646", "English (United States)")
OBSERVER_TYPE = ("121005", "DCM", "Observer Type")
DEVICE = ("121007", "DCM", "Device")
DEVICE_UID = ("121012", "DCM", "Device Observer UID")
DEVICE_NAME = ("121013", "DCM", "Device Observer Name")
DEVICE_MANUFACTURER = ("121014", "DCM", "Device Observer Manufacturer")
PROCEDURE_REPORTED = ("121058", "DCM", "Procedure reported")
BREAST_US = ("47079000", "SCT", "Ultrasonography of breast")
IMAGE_LIBRARY = ("111028", "DCM", "Image Library")
IMAGE_LIBRARY_GROUP = ("126200", "DCM", "Image Library Group")
IMAGING_MEASUREMENTS = ("126010", "DCM", "Imaging Measurements")
MEASUREMENT_GROUP = ("125007", "DCM", "Measurement Group")
TRACKING_ID = ("112039", "DCM", "Tracking Identifier")
TRACKING_UID = ("112040", "DCM", "Tracking Unique Identifier")
FINDING = ("121071", "DCM", "Finding")
MASS = ("4147007", "SCT", "Mass")
LONG_AXIS = ("103339001", "SCT", "Long axis")
SHORT_AXIS = ("103340004", "SCT", "Short axis")
AREA = ("42798000", "SCT", "Area")
MM = ("mm", "UCUM", "mm")
MM2 = ("mm2", "UCUM", "mm2")


class NoMeasurementsInMm(ValueError):
    """The measurements are in pixels (or there are none): no SR, and this says why."""


def _code(c: tuple[str, str, str]) -> Any:
    from pydicom.dataset import Dataset

    d = Dataset()
    d.CodeValue, d.CodingSchemeDesignator, d.CodeMeaning = c
    return d


def _item(relationship: str, value_type: str, concept: tuple[str, str, str], **values: Any) -> Any:
    from pydicom.dataset import Dataset

    d = Dataset()
    d.RelationshipType = relationship
    d.ValueType = value_type
    d.ConceptNameCodeSequence = [_code(concept)]
    for k, v in values.items():
        setattr(d, k, v)
    return d


def _container(relationship: str, concept: tuple[str, str, str], children: list[Any]) -> Any:
    d = _item(relationship, "CONTAINER", concept, ContinuityOfContent="SEPARATE")
    d.ContentSequence = children
    return d


def _num(concept: tuple[str, str, str], value: float, unit: tuple[str, str, str]) -> Any:
    from pydicom.dataset import Dataset

    mv = Dataset()
    mv.NumericValue = f"{value:.2f}"
    mv.MeasurementUnitsCodeSequence = [_code(unit)]
    return _item("CONTAINS", "NUM", concept, MeasuredValueSequence=[mv])


def device_uid() -> str:
    """busapp's observer UID: the same for every report of one busapp version (no registered root:
    pydicom's UUID-derived root, from the name and version)."""
    from pydicom.uid import generate_uid

    from busapp import __version__

    return generate_uid(entropy_srcs=["busapp", __version__])


def measurement_report(source: Any, measurements: Any, base: Any, when: _dt.datetime, image: Any) -> Any:
    """The SR dataset: ``base`` (``dicom_export._base`` for this SOP class) with the SR modules and
    the TID 1500 content tree for ``measurements`` (``core.measure.LesionMeasurements`` in mm);
    ``image``: the reference item (SOP Class / Instance UID) to the source image."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    m = measurements
    if m is None or not m.calibrated:
        raise NoMeasurementsInMm("the lesion's sizes are in pixels (no trusted pixel size), so no SR "
                                 "measurements are written; the PDF and the overlay still are")
    ds = base
    ds.Modality = "SR"
    ds.ReferencedPerformedProcedureStepSequence = []  # Type 2
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"  # no clinician has signed it: decision support
    ds.PerformedProcedureCodeSequence = [_code(BREAST_US)]
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code(REPORT)]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "1500"
    ds.ContentTemplateSequence = [template]

    series = Dataset()  # the evidence: the source image, as the image library references it too
    series.SeriesInstanceUID = source.SeriesInstanceUID
    series.ReferencedSOPSequence = [image]
    study = Dataset()
    study.StudyInstanceUID = source.StudyInstanceUID
    study.ReferencedSeriesSequence = [series]
    ds.CurrentRequestedProcedureEvidenceSequence = [study]

    library_image = Dataset()  # an image library entry: an IMAGE item without a concept name
    library_image.RelationshipType = "CONTAINS"
    library_image.ValueType = "IMAGE"
    library_image.ReferencedSOPSequence = [image]
    group = [
        _item("HAS OBS CONTEXT", "TEXT", TRACKING_ID, TextValue="lesion 1"),
        _item("HAS OBS CONTEXT", "UIDREF", TRACKING_UID, UID=generate_uid()),
        _item("CONTAINS", "CODE", FINDING, ConceptCodeSequence=[_code(MASS)]),
        _num(LONG_AXIS, m.longest_diameter, MM),
        _num(SHORT_AXIS, m.perpendicular_diameter, MM),
        _num(AREA, m.area, MM2),
    ]
    ds.ContentSequence = [
        _item("HAS CONCEPT MOD", "CODE", LANGUAGE, ConceptCodeSequence=[_code(ENGLISH)]),
        _item("HAS OBS CONTEXT", "CODE", OBSERVER_TYPE, ConceptCodeSequence=[_code(DEVICE)]),
        _item("HAS OBS CONTEXT", "UIDREF", DEVICE_UID, UID=device_uid()),
        _item("HAS OBS CONTEXT", "TEXT", DEVICE_NAME, TextValue="busapp"),
        _item("HAS OBS CONTEXT", "TEXT", DEVICE_MANUFACTURER, TextValue="busapp"),
        _item("HAS CONCEPT MOD", "CODE", PROCEDURE_REPORTED, ConceptCodeSequence=[_code(BREAST_US)]),
        _container("CONTAINS", IMAGE_LIBRARY, [_container("CONTAINS", IMAGE_LIBRARY_GROUP, [library_image])]),
        _container("CONTAINS", IMAGING_MEASUREMENTS, [_container("CONTAINS", MEASUREMENT_GROUP, group)]),
    ]
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    return ds
