"""The entry point: --version and --self-test without Qt widgets; the window title."""

from __future__ import annotations

import subprocess
import sys

import pytest

from busapp import __version__
from busapp.app import main


def test_version_prints_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"busapp {__version__}"


def test_version_and_self_test_do_not_import_qt_widgets() -> None:
    code = (
        "import sys, busapp.selftest as st\n"
        "st.main = lambda argv=None: 7\n"
        "from busapp.app import main\n"
        "assert main(['--version']) == 0\n"
        "assert main(['--self-test']) == 7\n"
        "assert 'PySide6.QtWidgets' not in sys.modules, 'Qt widgets imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"busapp {__version__}"


def test_self_test_returns_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import busapp.selftest

    seen = {}

    def fake(argv: list[str] | None = None) -> int:
        seen["argv"] = argv
        return 3

    monkeypatch.setattr(busapp.selftest, "main", fake)
    assert main(["--self-test", "--no-qt"]) == 3
    assert "--no-qt" in seen["argv"]


def test_window_title_starts_with_busapp(window) -> None:
    assert window.windowTitle().startswith("busapp")
    assert window.file_menu.title() and window.help_menu.title() and window.view_menu.title()
