"""Persistent user settings (QSettings): window layout, last folder, overlay appearance."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

OVERLAY_MODES = ("both", "fill", "outline")
DEFAULT_OPACITY = 0.5


class AppSettings:
    """Typed access to QSettings. Pass a QSettings of your own (tests: an ini file in a tmp dir)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings()

    def sync(self) -> None:
        self.q.sync()

    # -- overlay ---------------------------------------------------------------------------------
    @property
    def overlay_opacity(self) -> float:
        try:
            v = float(self.q.value("overlay/opacity", DEFAULT_OPACITY))
        except (TypeError, ValueError):
            return DEFAULT_OPACITY
        return min(1.0, max(0.0, v))

    @overlay_opacity.setter
    def overlay_opacity(self, v: float) -> None:
        self.q.setValue("overlay/opacity", round(float(v), 3))

    @property
    def overlay_mode(self) -> str:
        v = str(self.q.value("overlay/mode", "both"))
        return v if v in OVERLAY_MODES else "both"

    @overlay_mode.setter
    def overlay_mode(self, v: str) -> None:
        if v not in OVERLAY_MODES:
            raise ValueError(f"overlay mode must be one of {OVERLAY_MODES}")
        self.q.setValue("overlay/mode", v)

    @property
    def overlay_visible(self) -> bool:
        return _as_bool(self.q.value("overlay/visible", True))

    @overlay_visible.setter
    def overlay_visible(self, v: bool) -> None:
        self.q.setValue("overlay/visible", bool(v))

    @property
    def show_calipers(self) -> bool:
        return _as_bool(self.q.value("overlay/calipers", True))

    @show_calipers.setter
    def show_calipers(self, v: bool) -> None:
        self.q.setValue("overlay/calipers", bool(v))

    # -- files and layout ------------------------------------------------------------------------
    @property
    def last_folder(self) -> str:
        return str(self.q.value("files/last_folder", "") or "")

    @last_folder.setter
    def last_folder(self, v: str) -> None:
        self.q.setValue("files/last_folder", str(v))

    @property
    def last_export_folder(self) -> str:
        """Where reports and PNGs were last saved (kept apart from the folder images come from)."""
        return str(self.q.value("files/last_export_folder", "") or "")

    @last_export_folder.setter
    def last_export_folder(self, v: str) -> None:
        self.q.setValue("files/last_export_folder", str(v))

    def window_geometry(self) -> QByteArray | None:
        return _as_bytes(self.q.value("window/geometry"))

    def set_window_geometry(self, v: QByteArray) -> None:
        self.q.setValue("window/geometry", v)

    def splitter_state(self) -> QByteArray | None:
        return _as_bytes(self.q.value("window/splitter"))

    def set_splitter_state(self, v: QByteArray) -> None:
        self.q.setValue("window/splitter", v)


def _as_bool(v: object) -> bool:
    # Ini files give strings back ("true"/"false").
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _as_bytes(v: object) -> QByteArray | None:
    if isinstance(v, QByteArray) and not v.isEmpty():
        return v
    if isinstance(v, bytes | bytearray) and v:
        return QByteArray(bytes(v))
    return None
