"""A restrained dark theme: dark surroundings make grey-scale images easier to read, and nothing
competes with the image for attention. Fusion style + palette, plus a little QSS for the panel.

Kept in Python (not a .qss file) so it travels with the package without package-data set-up.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BG = "#1b1d21"
SURFACE = "#222529"
BORDER = "#34383f"
TEXT = "#e3e5e8"
TEXT_2 = "#9aa1ab"
ACCENT = "#5b9bd5"
WARN = "#e2a54a"
ERROR = "#e8806e"
DISABLED = "#666c75"

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BG}; }}
QSplitter::handle {{ background: {BORDER}; }}
QSplitter::handle:horizontal {{ width: 1px; }}
QToolBar {{ background: {SURFACE}; border: none; border-bottom: 1px solid {BORDER}; spacing: 2px; padding: 3px 6px; }}
QToolBar QToolButton {{ color: {TEXT}; padding: 4px 8px; border-radius: 4px; }}
QToolBar QToolButton:hover {{ background: #2d3137; }}
QToolBar QToolButton:checked {{ background: #2f4660; }}
QToolBar::separator {{ background: {BORDER}; width: 1px; margin: 4px 6px; }}
QStatusBar {{ background: {SURFACE}; color: {TEXT_2}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ color: {TEXT_2}; padding: 0 8px; }}
QStatusBar::item {{ border: none; }}
QMenuBar {{ background: {SURFACE}; color: {TEXT}; }}
QMenuBar::item:selected {{ background: #2f4660; }}
QMenu {{ background: {SURFACE}; color: {TEXT}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: #2f4660; }}
QMenu::separator {{ height: 1px; background: {BORDER}; margin: 4px 8px; }}

#imageList {{ background: {SURFACE}; border: none; outline: none; }}
#sidePanel {{ background: {SURFACE}; }}
#sidePanel QLabel {{ color: {TEXT}; }}
#sectionTitle {{ color: {TEXT_2}; font-size: 8pt; font-weight: 600; letter-spacing: 1px; padding-top: 4px; }}
#imageTitle {{ font-size: 11pt; font-weight: 600; }}
QLabel#secondary {{ color: {TEXT_2}; }}
QLabel#note {{ color: {TEXT_2}; font-size: 8pt; }}
QLabel#value {{ color: {TEXT}; font-weight: 600; }}
QLabel#headline {{ font-size: 15pt; font-weight: 600; color: {TEXT}; padding-top: 2px; }}
QLabel#headline[state="pending"] {{ color: {TEXT_2}; font-weight: 400; }}
QLabel#headline[state="uncertain"] {{ color: {WARN}; }}
QLabel#headline[state="error"] {{ color: {ERROR}; font-size: 12pt; }}
QLabel#lowConfidence {{ color: {WARN}; background: rgba(226, 165, 74, 0.10); border: 1px solid rgba(226, 165, 74, 0.45);
    border-radius: 4px; padding: 6px 8px; }}
QLabel#errorBox {{ color: #f0c2b8; background: rgba(232, 128, 110, 0.10); border: 1px solid rgba(232, 128, 110, 0.45);
    border-radius: 4px; padding: 6px 8px; }}
#disclaimer {{ background: #1e2126; border-top: 1px solid {BORDER}; }}
QLabel#disclaimerText {{ color: {TEXT_2}; font-size: 8pt; }}
QFrame#rule {{ background: {BORDER}; max-height: 1px; border: none; }}

QPushButton#segment {{ background: #2a2e34; color: {TEXT}; border: 1px solid {BORDER}; padding: 4px 8px; }}
QPushButton#segment:hover {{ background: #31363d; }}
QPushButton#segment:checked {{ background: #2f4660; border-color: #41668d; }}
QPushButton#segment[position="first"] {{ border-top-left-radius: 4px; border-bottom-left-radius: 4px; }}
QPushButton#segment[position="last"] {{ border-top-right-radius: 4px; border-bottom-right-radius: 4px; }}
QPushButton#segment[position="middle"], QPushButton#segment[position="last"] {{ border-left: none; }}

QSlider::groove:horizontal {{ height: 4px; background: #3a3f47; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {TEXT}; width: 14px; height: 14px; margin: -5px 0; border-radius: 7px; }}
QCheckBox {{ color: {TEXT}; spacing: 8px; }}
QToolTip {{ background: {SURFACE}; color: {TEXT}; border: 1px solid {BORDER}; }}
QTextBrowser {{ background: {SURFACE}; color: {TEXT}; border: 1px solid {BORDER}; }}

#overlayControls {{ background: {SURFACE}; border-top: 1px solid {BORDER}; }}
#identityStrip {{ background: #1f2a36; border-bottom: 1px solid #34506e; }}
#identityStrip[state="none"] {{ background: {SURFACE}; border-bottom: 1px solid {BORDER}; }}
QLabel#identityPatient {{ font-weight: 600; }}
#readerPanel {{ border-left: 3px solid #4f8a5b; }}
QLineEdit, QPlainTextEdit, QComboBox {{ background: #2a2e34; color: {TEXT}; border: 1px solid {BORDER};
    border-radius: 3px; padding: 2px 4px; }}
QLabel#note[state="error"] {{ color: {ERROR}; }}

/* Disabled: clearly dimmer than enabled (Export with no image must not look available). */
QMenu::item:disabled, QMenuBar::item:disabled {{ color: {DISABLED}; }}
QMenu::item:disabled:selected {{ background: transparent; }}
QToolBar QToolButton:disabled {{ color: {DISABLED}; }}
QPushButton:disabled, QPushButton#segment:disabled {{ color: {DISABLED}; background: #24272c; border-color: #2c3036; }}
QCheckBox:disabled, QLabel:disabled {{ color: {DISABLED}; }}
QLineEdit:disabled, QPlainTextEdit:disabled, QComboBox:disabled {{ color: {DISABLED}; background: #24272c; }}
QSlider::handle:horizontal:disabled {{ background: {DISABLED}; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, BG),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.Base, SURFACE),
        (QPalette.ColorRole.AlternateBase, "#262a2f"),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.Button, "#2a2e34"),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.Highlight, "#2f4660"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.ToolTipBase, SURFACE),
        (QPalette.ColorRole.ToolTipText, TEXT),
        (QPalette.ColorRole.PlaceholderText, TEXT_2),
        (QPalette.ColorRole.Link, ACCENT),
        (QPalette.ColorRole.Mid, BORDER),
        (QPalette.ColorRole.Dark, "#15171a"),
    ):
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)
