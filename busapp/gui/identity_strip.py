"""Whose image this is, at the top of the side panel: patient and study identity of a DICOM file.

Read from the file's header when the image is shown (``core.patient_identity``), cached per
opened file, never logged. Files without identity (PNG, JPEG, anonymised DICOM) say so, so the
reader knows to check the patient another way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from busapp.core.patient_identity import PatientIdentity


class IdentityStrip(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("identityStrip")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 8, 16, 8)
        lay.setSpacing(2)
        self.patient = QLabel()
        self.patient.setObjectName("identityPatient")
        self.study = QLabel()
        self.study.setObjectName("secondary")
        for lab in (self.patient, self.study):
            lab.setWordWrap(True)
            lab.setIndent(0)
            lay.addWidget(lab)
        self.set_identity(None, None)

    def set_identity(self, identity: PatientIdentity | None, source_format: str | None) -> None:
        """``identity`` None: nothing shown (no image) or, with a format, a file without identity."""
        if source_format is None:
            self.hide()
            return
        self.show()
        if identity is None or identity.empty:
            why = "not DICOM" if source_format != "DICOM" else "none in the DICOM header"
            self.patient.setText("No patient details")
            self.study.setText(f"({why}): check by other means that this is your patient's image.")
            self.setProperty("state", "none")
        else:
            i = identity
            dash = "\u2013"
            self.patient.setText(f"{i.name or 'Name not given'}  \u00b7  ID {i.patient_id or dash}  "
                                 f"\u00b7  born {i.birth_date or dash}")
            self.study.setText(f"Study {i.study_date or dash}  \u00b7  {i.laterality or 'laterality not given'}"
                               f"  \u00b7  view {i.view or dash}")
            self.setProperty("state", "dicom")
        self.style().unpolish(self)
        self.style().polish(self)

    def texts(self) -> str:
        return f"{self.patient.text()}\n{self.study.text()}"
