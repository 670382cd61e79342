"""Whose image this is: patient and study identity from a DICOM header, for display only (Qt-free).

Shown in the side panel and the PDF header so that a result is never attached to the wrong
patient. These values identify a person: they must never reach logs, default file names, the
audit log or the batch CSV, so nothing here logs them and ``__repr__`` hides them.

The header is read again with pydicom (stop before the pixel data, only the tags needed), which is
fast even for large cine files; laterality and view are not in ``LoadedImage.metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "AccessionNumber",
    "Laterality", "ImageLaterality", "ViewPosition", "ViewCodeSequence", "SeriesDescription",
    "StudyInstanceUID",
)
LATERALITY = {"L": "left", "R": "right", "B": "both", "U": "unpaired"}


@dataclass(frozen=True, repr=False)
class PatientIdentity:
    name: str = ""
    patient_id: str = ""
    birth_date: str = ""  # YYYY-MM-DD where the header's date is valid, else as written
    sex: str = ""
    study_date: str = ""
    accession: str = ""
    laterality: str = ""  # "left" / "right" / ...
    view: str = ""

    def __repr__(self) -> str:  # never print identifiers by accident (logs, tracebacks)
        return "PatientIdentity(<hidden>)"

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) for the panel and the PDF; every field shown, "not given" where empty."""
        def v(s: str) -> str:
            return s or "not given"

        return [
            ("Patient", v(self.name)),
            ("Patient ID", v(self.patient_id)),
            ("Birth date", v(self.birth_date)),
            ("Study date", v(self.study_date)),
            ("Laterality", v(self.laterality)),
            ("View", v(self.view)),
        ]


def _text(v: Any) -> str:
    return " ".join(str(v or "").split())


def _date(v: Any) -> str:
    s = _text(v)
    if len(s) == 8 and s.isdigit():
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return s


def _person(v: Any) -> str:
    """DICOM PN "Family^Given^Middle^Prefix^Suffix" -> "FAMILY, Given Middle"."""
    s = str(v or "").split("=")[0]  # the alphabetic representation
    parts = [p.strip() for p in s.split("^")]
    if len(parts) == 1:
        return _text(parts[0])
    family, given = parts[0], " ".join(p for p in parts[1:3] if p)
    return _text(f"{family.upper()}, {given}" if family and given else family or given)


def _view(ds: Any) -> str:
    seq = ds.get("ViewCodeSequence")
    if seq:
        meaning = _text(getattr(seq[0], "CodeMeaning", ""))
        if meaning:
            return meaning
    return _text(ds.get("ViewPosition", ""))


def identity_from_dataset(ds: Any) -> PatientIdentity:
    lat = _text(ds.get("ImageLaterality", "") or ds.get("Laterality", "")).upper()
    return PatientIdentity(
        name=_person(ds.get("PatientName", "")),
        patient_id=_text(ds.get("PatientID", "")),
        birth_date=_date(ds.get("PatientBirthDate", "")),
        sex=_text(ds.get("PatientSex", "")),
        study_date=_date(ds.get("StudyDate", "")),
        accession=_text(ds.get("AccessionNumber", "")),
        laterality=LATERALITY.get(lat, lat.lower()),
        view=_view(ds),
    )


def read_identity(path: Path) -> PatientIdentity | None:
    """The identity in a DICOM file's header; None for a file that is not DICOM or not readable."""
    try:
        import pydicom

        from busapp.core.dicom import looks_like_dicom

        with open(path, "rb") as f:
            if not looks_like_dicom(f.read(132)):
                return None
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True, specific_tags=list(TAGS))
    except Exception:  # not DICOM, damaged: the loader reports those; here: no identity
        return None
    if "PatientName" not in ds and "PatientID" not in ds and "StudyDate" not in ds:
        return PatientIdentity()
    return identity_from_dataset(ds)
