"""Help > Audit log: a read-only view of the append-only audit log (newest first).

Entry point: ``AuditLogDialog(parent=None, log=None)`` (``log``: an ``AuditLog``; default: the
user's). ``exec()`` or ``show()``. Nothing here can change the log.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from busapp.core.audit import AuditLog

COLUMNS = ("Time", "Action", "Source", "Result", "Measurements", "Model", "Image SHA-256", "Details")
MAX_ROWS = 5000  # newest first; older records stay in the file


def _result(e: dict[str, Any]) -> str:
    out = e.get("outputs") or {}
    if "label" not in out:
        return ""
    probs = out.get("probabilities") or {}
    p = probs.get(out["label"])
    s = f"{out['label']}" + (f" ({p * 100:.0f} %)" if isinstance(p, int | float) else "")
    return s + (" - low confidence" if out.get("low_confidence") else "")


def _measurements(e: dict[str, Any]) -> str:
    m = (e.get("outputs") or {}).get("measurements")
    if not m:
        return ""
    s = f"{m.get('longest_diameter', 0):.1f} x {m.get('perpendicular_diameter', 0):.1f} {m.get('unit', '')}"
    if m.get("spacing_source") == "user calibrated":
        s += " (user calibrated)"
    return s


def entry_cells(e: dict[str, Any]) -> list[str]:
    model = e.get("model") or {}
    details = e.get("details")
    return [
        str(e.get("time", "")).replace("T", " ")[:23],
        str(e.get("action", "")),
        str(e.get("source", "")),
        _result(e),
        _measurements(e),
        f"{model.get('name', '')} {model.get('version', '')}".strip(),
        str(e.get("sha256", "")),
        json.dumps(details, ensure_ascii=False) if details else ("line " + str(e["line"]) if "line" in e else ""),
    ]


class AuditLogDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, log: AuditLog | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("auditLogDialog")
        self.setWindowTitle("Audit log")
        self.resize(1000, 520)
        self.log = log or AuditLog()

        self.info = QLabel()
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setWordWrap(True)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter (action, result, sha256...)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # read-only
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        reload_button = QPushButton("Reload")
        reload_button.clicked.connect(self.reload)
        folder_button = QPushButton("Open folder")
        folder_button.clicked.connect(self._open_folder)
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.filter_edit, 1)
        buttons.addWidget(reload_button)
        buttons.addWidget(folder_button)
        buttons.addWidget(close_button)

        lay = QVBoxLayout(self)
        lay.addWidget(self.info)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        self.reload()

    @Slot()
    def reload(self) -> None:
        entries = list(self.log.entries())
        shown = entries[::-1][:MAX_ROWS]
        self.table.setRowCount(len(shown))
        for r, e in enumerate(shown):
            for c, text in enumerate(entry_cells(e)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        more = f" (newest {MAX_ROWS} shown)" if len(entries) > MAX_ROWS else ""
        self.info.setText(
            f"{len(entries)} records{more} in {self.log.path}. Images are identified by the SHA-256 of "
            "their file only; no file names or patient details are recorded. The log is append-only."
        )
        self._apply_filter(self.filter_edit.text())

    @Slot(str)
    def _apply_filter(self, text: str) -> None:
        t = text.strip().lower()
        for r in range(self.table.rowCount()):
            row_text = " ".join(
                self.table.item(r, c).text() for c in range(self.table.columnCount()) if self.table.item(r, c)
            )
            self.table.setRowHidden(r, bool(t) and t not in row_text.lower())

    def visible_rows(self) -> int:
        return sum(not self.table.isRowHidden(r) for r in range(self.table.rowCount()))

    @Slot()
    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log.path.parent)))
