"""GUI test fixtures: a real MainWindow with a private settings file, drop simulation, waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gui_helpers import make_settings
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from busapp.gui.main_window import MainWindow
from busapp.gui.style import apply_theme

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path: Path, qapp: QApplication) -> None:
    """Never touch the real user configuration, even through a default-constructed QSettings."""
    QCoreApplication.setOrganizationName("busapp-tests")
    QCoreApplication.setApplicationName("busapp-tests")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Audit log and calibrations of every GUI test go to tmp, never to the user's data folder."""
    data = tmp_path / "busapp-data"
    monkeypatch.setenv("BUSAPP_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="session", autouse=True)
def _theme(qapp: QApplication) -> None:
    apply_theme(qapp)  # screenshots should look like the real app


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "busapp-test.ini"


@pytest.fixture
def make_window(qtbot, settings_file: Path):
    """Factory: a shown MainWindow; closed (worker stopped) at teardown."""
    windows: list[MainWindow] = []

    def factory(bundle_dir: Path | None = None, settings_path: Path | None = None) -> MainWindow:
        w = MainWindow(make_settings(settings_path or settings_file), bundle_dir=bundle_dir)
        qtbot.addWidget(w)
        w.resize(1280, 820)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield factory
    for w in windows:
        w.close()
        assert w.worker_thread.wait(20_000), "worker thread did not stop"


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS

