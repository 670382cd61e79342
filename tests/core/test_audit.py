"""The audit log: append-only JSON lines, no file names, never interleaved."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from busapp.core.audit import AuditError, AuditLog, default_audit_path
from busapp.core.measure import measure_mask
from busapp.core.paths import user_data_dir
from busapp.core.predictor import Prediction

SHA = hashlib.sha256(b"image bytes").hexdigest()


def fake_prediction() -> Prediction:
    return Prediction(
        label="benign",
        probabilities={"normal": 0.1, "benign": 0.7, "malignant": 0.2},
        mask=np.zeros((4, 4), bool),
        model_name="busnet",
        model_version="9.9.9",
        low_confidence=False,
    )


def test_data_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSAPP_DATA_DIR", str(tmp_path / "data"))
    assert user_data_dir() == tmp_path / "data" and (tmp_path / "data").is_dir()
    assert default_audit_path() == tmp_path / "data" / "audit.jsonl"
    monkeypatch.delenv("BUSAPP_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    import sys

    if sys.platform.startswith("linux"):
        assert user_data_dir(create=False) == tmp_path / "xdg" / "busapp"


def test_records_analysis_and_actions(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    mask = np.zeros((50, 50), bool)
    mask[10:20, 10:40] = True
    m = measure_mask(mask, (0.1, 0.1), "user calibrated")
    log.record_analysis(SHA, fake_prediction(), m)
    log.record("export_report", sha256=SHA, details={"format": "pdf"})
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert first["action"] == "analysis" and first["sha256"] == SHA
    assert first["model"] == {"name": "busnet", "version": "9.9.9"}
    assert first["outputs"]["label"] == "benign"
    assert first["outputs"]["probabilities"]["malignant"] == pytest.approx(0.2)
    assert first["outputs"]["measurements"]["area"] == pytest.approx(3.0)
    assert first["outputs"]["measurements"]["spacing_source"] == "user calibrated"
    assert {"time", "user", "app_version", "source"} <= set(first)
    assert second["action"] == "export_report" and second["details"] == {"format": "pdf"}
    assert list(log.entries()) == [first, second]


def test_refuses_file_names_and_identifiers(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for bad in [
        {"details": {"file": "case001.png"}},
        {"details": {"patient_id": "12345"}},
        {"details": {"where": "/home/doc/Smith_John.png"}},
        {"details": {"where": tmp_path}},
        {"details": {"nested": [{"PatientName": "x"}]}},
        {"sha256": "not-a-hash"},
    ]:
        with pytest.raises(AuditError):
            log.record("analysis", **bad)
    assert not (tmp_path / "audit.jsonl").exists()  # nothing half-written


def test_append_only_and_concurrent(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record("analysis", sha256=SHA)
    before = path.read_bytes()

    def worker(k: int) -> None:
        log = AuditLog(path)
        for i in range(25):
            log.record("analysis", sha256=SHA, details={"worker": k, "i": i, "pad": "x" * 150})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = path.read_bytes()
    assert data.startswith(before)  # earlier records untouched
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert len(entries) == 101
    assert {(e["details"]["worker"], e["details"]["i"]) for e in entries[1:]} == {
        (k, i) for k in range(4) for i in range(25)
    }


def test_damaged_line_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("analysis", sha256=SHA)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"action": "analy\n')
    log.record("batch", details={"images": 3})
    got = list(log.entries())
    assert [e["action"] for e in got] == ["analysis", "unreadable line", "batch"]
    assert list(AuditLog(tmp_path / "none.jsonl").entries()) == []
