"""Shared fixtures. Qt runs headless in every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data sets beside the repository; tests that need them skip loudly without."""
    from busapp.training.data import default_data_root

    root = default_data_root()
    if not (root / "busi" / "manifest.csv").exists():
        if os.environ.get("CI"):
            pytest.fail(f"data sets not found at {root}")
        pytest.skip(f"data sets not found at {root}")
    return root


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    from busapp.core.model_bundle import default_bundle_dir

    return default_bundle_dir()


@pytest.fixture(scope="session")
def sample_images() -> list[Path]:
    """Real ultrasound images shipped in resources/samples (BrEaST-Lesions-USG, CC BY 4.0)."""
    files = sorted((REPO / "resources" / "samples").glob("*.png"))
    if not files:
        pytest.skip("no sample images in resources/samples")
    return files
