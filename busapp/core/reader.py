"""The reader's own assessment of an image, kept apart from the model's output (Qt-free).

A clinician accepts or rejects the AI result, gives their BI-RADS category, a comment and their
name. ``ReaderAssessment`` is that record; ``AssessmentStore`` keeps it per image sha256 and
frame in the user's data folder (atomically written), so the GUI, the PDF report and the batch CSV
all find it. In the audit log only what cannot identify a patient goes in: the decision, the
category, the reader's name and a SHA-256 of the free-text comment (a comment may well name the
patient, so its text stays out of the log).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from busapp.core.image_store import FrameStore, is_sha256

BIRADS_CATEGORIES = ("2", "3", "4A", "4B", "4C", "5")
BIRADS_MEANING = {
    "2": "benign",
    "3": "probably benign",
    "4A": "low suspicion for malignancy",
    "4B": "moderate suspicion for malignancy",
    "4C": "high suspicion for malignancy",
    "5": "highly suggestive of malignancy",
}
AI_ACCEPTED, AI_REJECTED = "accepted", "rejected"
AI_DECISIONS = (AI_ACCEPTED, AI_REJECTED)
READER_ASSESSMENT_ACTION = "reader_assessment"  # == busapp.core.audit.READER_ASSESSMENT
ASSESSMENTS_FOLDER = "reader_assessments"
MAX_NAME = 80
MAX_COMMENT = 2000
READER_COLUMNS = (
    "reader_name",
    "reader_ai_result",
    "reader_birads",
    "reader_comment",
    "reader_outline_edited",
    "reader_assessed_at",
)


class AssessmentError(ValueError):
    """An assessment that cannot be recorded; the message says why, in one sentence."""


@dataclass(frozen=True)
class ReaderAssessment:
    reader: str
    ai_result: str | None  # "accepted", "rejected", or None (the reader did not say)
    birads: str | None  # one of BIRADS_CATEGORIES, or None
    comment: str = ""
    outline_edited: bool = False
    frame: int = 0
    assessed_at: str = ""  # ISO 8601, UTC

    def __post_init__(self) -> None:
        name = " ".join(str(self.reader or "").split())
        if not name:
            raise AssessmentError("Enter the reader's name: an assessment must say who made it.")
        if len(name) > MAX_NAME:
            raise AssessmentError(f"The reader's name is longer than {MAX_NAME} characters.")
        if self.ai_result not in (None, *AI_DECISIONS):
            raise AssessmentError(f"The AI result must be accepted or rejected, not {self.ai_result!r}.")
        birads = None if self.birads in (None, "") else str(self.birads).upper()
        if birads is not None and birads not in BIRADS_CATEGORIES:
            raise AssessmentError(f"BI-RADS must be one of {', '.join(BIRADS_CATEGORIES)}, not {self.birads!r}.")
        if self.ai_result is None and birads is None and not self.comment.strip():
            raise AssessmentError("The assessment is empty: accept or reject the AI result, or give a category.")
        if len(self.comment) > MAX_COMMENT:
            raise AssessmentError(f"The comment is longer than {MAX_COMMENT} characters.")
        object.__setattr__(self, "reader", name)
        object.__setattr__(self, "birads", birads)
        object.__setattr__(self, "comment", self.comment.strip())
        if not self.assessed_at:
            object.__setattr__(self, "assessed_at", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    @property
    def birads_text(self) -> str:
        return f"BI-RADS {self.birads} ({BIRADS_MEANING[self.birads]})" if self.birads else "no category given"

    @property
    def ai_text(self) -> str:
        return {AI_ACCEPTED: "AI result accepted", AI_REJECTED: "AI result rejected"}.get(
            self.ai_result or "", "AI result neither accepted nor rejected")

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows for the panel and the report."""
        rows = [
            ("Reader", self.reader),
            ("AI result", self.ai_text.removeprefix("AI result ")),
            ("Reader's BI-RADS", self.birads_text.removeprefix("BI-RADS ") if self.birads else "not given"),
            ("Outline", "edited by the reader" if self.outline_edited else "the model's, unchanged"),
            ("Assessed", self.assessed_at.replace("T", " ").replace("+00:00", " UTC")),
        ]
        if self.comment:
            rows.append(("Comment", self.comment))
        return rows

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReaderAssessment:
        return cls(
            reader=str(d.get("reader", "")),
            ai_result=d.get("ai_result"),
            birads=d.get("birads"),
            comment=str(d.get("comment", "") or ""),
            outline_edited=bool(d.get("outline_edited", False)),
            frame=int(d.get("frame", 0)),
            assessed_at=str(d.get("assessed_at", "")),
        )

    def audit_outputs(self) -> dict[str, Any]:
        """What the audit log holds: no free text, which could name the patient."""
        out: dict[str, Any] = {
            "ai_result": self.ai_result,
            "birads": self.birads,
            "outline_edited": self.outline_edited,
            "reader": self.reader.replace("/", " ").replace("\\", " "),
        }
        if self.comment:
            out["comment_sha256"] = hashlib.sha256(self.comment.encode("utf-8")).hexdigest()
        return out

    def csv_values(self) -> dict[str, str]:
        return {
            "reader_name": self.reader,
            "reader_ai_result": self.ai_result or "",
            "reader_birads": self.birads or "",
            "reader_comment": self.comment,
            "reader_outline_edited": str(self.outline_edited).lower(),
            "reader_assessed_at": self.assessed_at,
        }


def record_assessment(audit: Any, sha256: str, a: ReaderAssessment, model: dict[str, Any] | None = None,
                      source: str = "gui") -> dict[str, Any]:
    """Append the assessment to the audit log (``AuditLog.record``) under its own action."""
    return audit.record(READER_ASSESSMENT_ACTION, sha256=sha256, model=model, outputs=a.audit_outputs(),
                        details={"frame": a.frame}, source=source)


class AssessmentStore(FrameStore):
    """Assessments per image sha256 (frames inside), one small JSON file each, atomically written."""

    folder_name = ASSESSMENTS_FOLDER
    what = "an assessment"
    create_folder = False
    json_options: ClassVar[dict[str, Any]] = {"indent": 1, "ensure_ascii": False}

    def get(self, sha256: str | None, frame: int = 0) -> ReaderAssessment | None:
        if not is_sha256(sha256):
            return None
        entry = self._entry(sha256, frame)
        if not isinstance(entry, dict):
            return None
        try:
            return ReaderAssessment.from_json(entry)
        except (AssessmentError, TypeError, ValueError):
            return None  # a damaged entry is no assessment, not a crash

    def put(self, sha256: str, a: ReaderAssessment) -> None:
        self._put_entry(sha256, a.frame, a.to_json())


def reader_csv_values(sha256: str | None, frame: int = 0, store: AssessmentStore | None = None) -> dict[str, str]:
    """The batch CSV's reader columns for one image: empty where the reader has not assessed it."""
    a = (store or AssessmentStore()).get(sha256, frame)
    return a.csv_values() if a is not None else dict.fromkeys(READER_COLUMNS, "")
