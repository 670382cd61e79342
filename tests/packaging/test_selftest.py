"""``busapp --self-test``: passes on a good installation, fails clearly on a broken one."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from busapp import selftest

REPO = Path(__file__).resolve().parents[2]


def _copy_runtime_bundle(src: Path, dst: Path) -> Path:
    """The bundle as installed: card + LiteRT model, no .keras (as in the PyInstaller build)."""
    dst.mkdir(parents=True)
    card = json.loads((src / "card.json").read_text(encoding="utf-8"))
    shutil.copy(src / "card.json", dst / "card.json")
    shutil.copy(src / card["files"]["tflite"]["path"], dst / card["files"]["tflite"]["path"])
    return dst


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = selftest.main(argv)
    return rc, capsys.readouterr().out


def test_selftest_passes_in_process(qapp, capsys: pytest.CaptureFixture[str]) -> None:
    # qapp first: the Qt check then reuses pytest-qt's QApplication instead of making a QGuiApplication.
    rc, out = _run([], capsys)
    assert rc == 0, out
    assert "Self-test passed" in out
    assert "sha256 OK" in out
    for check in ("model", "runtime", "prediction", "repeat", "dicom", "qt"):
        assert f"OK    {check}" in out, out
    assert "tensorflow" not in sys.modules or "FAIL" not in out


def test_selftest_accepts_its_own_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(["--self-test", "--no-qt", "--no-dicom"], capsys)
    assert rc == 0, out


def test_corrupt_model_fails_with_clear_message(bundle_dir: Path, tmp_path: Path, capsys) -> None:
    d = _copy_runtime_bundle(bundle_dir, tmp_path / "busnet")
    model = d / json.loads((d / "card.json").read_text())["files"]["tflite"]["path"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: still loads, but is not the model the card describes
    model.write_bytes(bytes(data))
    rc, out = _run(["--model", str(d), "--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "FAIL  model" in out
    assert "does not match its model card" in out
    assert "Self-test FAILED" in out
    assert "Traceback" not in out


def test_missing_model_file_fails(bundle_dir: Path, tmp_path: Path, capsys) -> None:
    d = _copy_runtime_bundle(bundle_dir, tmp_path / "busnet")
    for f in d.glob("*.tflite"):
        f.unlink()
    rc, out = _run(["--model", str(d), "--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "is missing" in out


def test_missing_card_fails(tmp_path: Path, capsys) -> None:
    rc, out = _run(["--model", str(tmp_path), "--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "No model found" in out
    # Later checks say they were skipped rather than crash.
    assert "Skipped" in out


def test_unreadable_image_fails(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"this is not a PNG")
    rc, out = _run(["--image", str(bad), "--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "FAIL  prediction" in out
    assert "not-an-image.png" in out


def test_bad_option_returns_usage_error(capsys) -> None:
    assert selftest.main(["--no-such-option"]) == 2


def _pred(probs: dict[str, float], mask: np.ndarray, label: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        label=label or max(probs, key=probs.get), probabilities=probs, mask=mask, low_confidence=False
    )


CLASSES = ("normal", "benign", "malignant")


def test_sanity_accepts_a_good_prediction() -> None:
    p = _pred({"normal": 0.2, "benign": 0.7, "malignant": 0.1}, np.zeros((5, 7), bool))
    assert selftest.sanity_problems(p, (5, 7), CLASSES) == []


@pytest.mark.parametrize(
    ("probs", "mask", "label", "expected"),
    [
        ({"normal": float("nan"), "benign": 0.5, "malignant": 0.5}, np.zeros((5, 7), bool), "benign", "not finite"),
        ({"normal": 0.5, "benign": 0.5, "malignant": 0.5}, np.zeros((5, 7), bool), None, "sum to"),
        ({"normal": -0.1, "benign": 0.6, "malignant": 0.5}, np.zeros((5, 7), bool), None, "outside [0, 1]"),
        ({"normal": 0.2, "benign": 0.7, "malignant": 0.1}, np.zeros((7, 5), bool), None, "mask is (7, 5)"),
        ({"normal": 0.2, "benign": 0.7, "malignant": 0.1}, np.zeros((5, 7), np.uint8), None, "not bool"),
        ({"normal": 0.2, "benign": 0.7, "malignant": 0.1}, np.zeros((5, 7), bool), "cyst", "not one of"),
        ({"normal": 0.2, "benign": 0.7, "malignant": 0.1}, np.zeros((5, 7), bool), "normal", "not the most probable"),
        ({"normal": 0.3, "benign": 0.7}, np.zeros((5, 7), bool), None, "the card lists"),
    ],
)
def test_sanity_catches_implausible_results(probs, mask, label, expected) -> None:
    problems = selftest.sanity_problems(_pred(probs, mask, label), (5, 7), CLASSES)
    assert any(expected in p for p in problems), problems


def _env() -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def test_selftest_module_subprocess() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "busapp.selftest"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Self-test passed" in r.stdout


@pytest.mark.skipif(importlib.util.find_spec("busapp.app") is None, reason="busapp.app not written yet")
def test_app_self_test_flag_subprocess() -> None:
    """The entry point a user and the bundle use: ``python -m busapp --self-test``, no display."""
    env = _env()
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run(
        [sys.executable, "-m", "busapp", "--self-test"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Self-test passed" in r.stdout
    v = subprocess.run([sys.executable, "-m", "busapp", "--version"], cwd=REPO, env=env, capture_output=True, text=True)
    assert v.returncode == 0
    from busapp import __version__

    assert __version__ in v.stdout


def test_selftest_imports_no_qt_widgets_or_training() -> None:
    """The self-test must stay light: importing it pulls in neither Qt nor TensorFlow."""
    code = (
        "import sys, busapp.selftest; "
        "bad = [m for m in ('PySide6', 'tensorflow', 'keras', 'busapp.training') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "dist" / "busapp" / "busapp").exists(), reason="bundle not built (make package)")
def test_built_bundle_self_test() -> None:
    r = subprocess.run(
        [str(REPO / "dist" / "busapp" / "busapp"), "--self-test"], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bundle at" in r.stdout


def test_network_access_fails_the_self_test(monkeypatch, capsys) -> None:
    import socket

    def phones_home(ctx: selftest.Context) -> str:
        socket.getaddrinfo("localhost", 443)  # resolving is already a network access attempt
        return "did something"

    checks = [c for c in selftest.CHECKS if c[0] in ("model", "network")]
    monkeypatch.setattr(selftest, "CHECKS", [checks[0], ("sneaky", phones_home), checks[1]])
    rc, out = _run(["--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "FAIL  network" in out
    assert "socket.getaddrinfo" in out


def test_dicom_check_names_a_lost_decoder(monkeypatch, capsys) -> None:
    """A codec library lost by freezing (here: GDCM) fails the DICOM check, naming what is missing."""
    from busapp.core import dicom

    real = dicom.decoder_plugins
    monkeypatch.setattr(dicom, "decoder_plugins", lambda ts: [p for p in real(ts) if "gdcm" not in p])
    rc, out = _run(["--no-qt"], capsys)
    assert rc == 1
    assert "FAIL  dicom" in out
    assert "JPEG lossless: no gdcm decoder" in out and "12-bit JPEG: no busapp-gdcm12 decoder" in out
    assert "Traceback" not in out


def test_a_data_file_the_analysis_reads_is_checked(monkeypatch, tmp_path: Path, capsys) -> None:
    # The self-test runs the app's analysis path (risk, input check), not the bare model: a bundle
    # that lacks a data file the analysis reads fails the self-test instead of the user's first image.
    from busapp.core import input_check

    missing = tmp_path / "input_check_params.json"
    monkeypatch.setattr(input_check, "load_params", lambda card=None: json.loads(missing.read_text()))
    rc, out = _run(["--no-qt", "--no-dicom"], capsys)
    assert rc == 1
    assert "FAIL  prediction" in out and "input_check_params.json" in out
