"""Help > Audit log: read-only, newest first, filterable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QAbstractItemView

from busapp.core.audit import AuditLog
from busapp.core.measure import measure_mask
from busapp.core.predictor import Prediction
from busapp.gui.audit_view import AuditLogDialog

SHA = hashlib.sha256(b"x").hexdigest()


def test_audit_view(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    pred = Prediction(
        "malignant",
        {"normal": 0.05, "benign": 0.15, "malignant": 0.8},
        np.zeros((2, 2), bool),
        "busnet",
        "1.2.3",
        False,
    )
    mask = np.zeros((40, 40), bool)
    mask[5:25, 5:15] = True
    log.record_analysis(SHA, pred, measure_mask(mask, (0.1, 0.1), "user calibrated"))
    log.record("export_report", sha256=SHA, details={"format": "pdf"})
    with open(path, "a", encoding="utf-8") as f:
        f.write("garbage\n")
    before = path.read_bytes()

    dlg = AuditLogDialog(None, log)
    qtbot.addWidget(dlg)
    dlg.show()
    t = dlg.table
    assert t.rowCount() == 3
    assert t.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert t.item(0, 1).text() == "unreadable line"  # newest first
    assert t.item(1, 1).text() == "export_report" and "pdf" in t.item(1, 7).text()
    assert t.item(2, 1).text() == "analysis"
    assert t.item(2, 3).text() == "malignant (80 %)"
    assert "user calibrated" in t.item(2, 4).text() and "mm" in t.item(2, 4).text()
    assert t.item(2, 5).text() == "busnet 1.2.3" and t.item(2, 6).text() == SHA
    assert "3 records" in dlg.info.text() and str(path) in dlg.info.text()

    dlg.filter_edit.setText("export")
    assert dlg.visible_rows() == 1
    dlg.filter_edit.setText("")
    assert dlg.visible_rows() == 3

    log.record("batch", details={"images": 5})
    dlg.reload()
    assert t.rowCount() == 4 and t.item(0, 1).text() == "batch"
    assert path.read_bytes().startswith(before)  # the viewer never rewrites the log
    dlg.close()


def test_audit_view_empty(qtbot, tmp_path: Path) -> None:
    dlg = AuditLogDialog(None, AuditLog(tmp_path / "none.jsonl"))
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 0 and "0 records" in dlg.info.text()
    assert not (tmp_path / "none.jsonl").exists()
