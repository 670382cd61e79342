"""Append-only audit log (JSON lines) of analyses and user actions, in the user's data folder.

Privacy rule: a record identifies an image only by the sha256 of its file. It never holds a file
name, a path or anything read from the file's metadata (DICOM names, IDs, dates): ``record``
refuses values that look like paths and keys that name such things.

Integrity: each record is one ``os.write`` of a whole line to a file opened with ``O_APPEND`` and
then fsync'ed, so lines from several threads or processes never interleave, and the file is never
rewritten or truncated by busapp.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from busapp import __version__
from busapp.core.paths import user_data_dir

AUDIT_FILE_NAME = "audit.jsonl"

# Actions written by busapp; other strings are allowed but these are the ones the viewer knows.
ANALYSIS = "analysis"
EXPORT_REPORT = "export_report"
EXPORT_MASK = "export_mask"
EXPORT_OVERLAY = "export_overlay"
BATCH = "batch"
CALIBRATION = "calibration"
READER_ASSESSMENT = "reader_assessment"  # the reader's own reading (busapp.core.reader), no free text

_FORBIDDEN_KEYS = re.compile(r"patient|file|path|folder|directory|^dir$", re.I)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_lock = threading.Lock()


class AuditError(ValueError):
    """A record would leak a path or identifier; it is refused rather than written."""


def default_audit_path() -> Path:
    return user_data_dir() / AUDIT_FILE_NAME


def _check_safe(obj: Any, where: str = "record") -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if _FORBIDDEN_KEYS.search(str(k)):
                raise AuditError(f"audit {where}: key {k!r} may hold a file name or identifier")
            _check_safe(v, f"{where}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_safe(v, f"{where}[{i}]")
    elif isinstance(obj, os.PathLike):
        raise AuditError(f"audit {where}: a path is not allowed")
    elif isinstance(obj, str) and ("/" in obj or "\\" in obj or len(obj) > 200):
        raise AuditError(f"audit {where}: text that looks like a path is not allowed")


class AuditLog:
    """``AuditLog().record("analysis", sha256=..., model=..., outputs=...)``; ``entries()`` reads back."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_audit_path()

    def record(
        self,
        action: str,
        *,
        sha256: str | None = None,
        model: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        source: str = "gui",
    ) -> dict[str, Any]:
        if sha256 is not None and not _SHA256.match(sha256):
            raise AuditError("audit record: sha256 must be 64 lower-case hex digits")
        entry: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="milliseconds"),
            "action": action,
            "source": source,
            "user": _user(),
            "app_version": __version__,
        }
        if sha256 is not None:
            entry["sha256"] = sha256
        if model is not None:
            entry["model"] = dict(model)
        if outputs is not None:
            entry["outputs"] = dict(outputs)
        if details is not None:
            entry["details"] = dict(details)
        _check_safe({k: v for k, v in entry.items() if k != "user"})
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
            try:
                written = os.write(fd, line)  # one write: a line is never split or interleaved
                if written != len(line):  # pragma: no cover - disk full
                    raise OSError(f"audit log: short write ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def record_analysis(
        self,
        sha256: str,
        prediction: Any,
        measurements: Any = None,
        source: str = "gui",
        action: str = ANALYSIS,
        details: Mapping[str, Any] | None = None,
        *,
        model_sha256: str | None = None,
        extra_outputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An analysis (or an export of one): the Prediction's outputs and the measurements, no mask.

        ``model_sha256``: of the model file that ran, so a record names the exact model, not only
        its version; ``extra_outputs`` (e.g. the risk band) are added to ``outputs``.
        """
        outputs: dict[str, Any] = {
            "label": prediction.label,
            "probabilities": {k: round(float(v), 6) for k, v in prediction.probabilities.items()},
            "low_confidence": bool(prediction.low_confidence),
            "measurements": measurements.to_json() if measurements is not None else None,
            **(extra_outputs or {}),
        }
        model = {"name": prediction.model_name, "version": prediction.model_version}
        if model_sha256 is not None:
            model["sha256"] = model_sha256
        return self.record(action, sha256=sha256, model=model, outputs=outputs, details=details, source=source)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Records in order; a damaged line (e.g. a crash mid-disk-write elsewhere) is yielded as an error stub."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise ValueError("not an object")
                    yield obj
                except ValueError:
                    yield {"action": "unreadable line", "line": n}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name on some service accounts
        return "unknown"
