"""busapp.core, busapp.training and busapp.cli never import Qt: they run in the batch CLI, in
training jobs and on machines without a display. Each module is imported in a fresh interpreter
where importing PySide6 (or shiboken6) raises, so an indirect import fails too."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import busapp

QT_FREE = ("busapp.core", "busapp.training", "busapp.cli")

BLOCK_QT = """
import importlib.abc, sys

class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6"):
            raise ImportError(f"Qt import blocked: {name}")
        return None

sys.meta_path.insert(0, BlockQt())
import importlib
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as e:
        if "Qt import blocked" in str(e):
            failed.append(f"{name}: {e}")
        else:
            raise
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def modules(package: str) -> list[str]:
    root = Path(busapp.__file__).parent / package.split(".", 1)[1]
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(root)])]


def test_the_block_catches_a_qt_import():
    r = subprocess.run([sys.executable, "-c", BLOCK_QT, "busapp.gui.about"], capture_output=True, text=True)
    assert r.returncode == 1 and "Qt import blocked" in r.stdout


@pytest.mark.parametrize("package", QT_FREE)
def test_package_imports_without_qt(package):
    names = modules(package)
    assert len(names) > 1
    r = subprocess.run([sys.executable, "-c", BLOCK_QT, *names], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{package} imports Qt:\n{r.stdout}{r.stderr[-2000:]}"
