"""The PDF report leads with the malignancy assessment and carries the input warnings."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from risk_cards import bundle_with_decision

from busapp.core.imageio import load_image
from busapp.core.input_check import InputWarning
from busapp.core.model_bundle import load_bundle
from busapp.core.predictor import Prediction
from busapp.report.pdf import build_report_data, render_report_page, report_text, write_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s))


def _pred(loaded, probs: dict[str, float]) -> Prediction:
    return Prediction(max(probs, key=probs.__getitem__), probs, np.zeros((loaded.height, loaded.width), bool),
                      "busnet", "test", False)


def test_report_leads_with_the_band(sample_images: list[Path], tmp_path: Path, qapp) -> None:
    pypdf = pytest.importorskip("pypdf")
    card = load_bundle(bundle_with_decision(tmp_path)).card
    loaded = load_image(sample_images[0])
    pred = _pred(loaded, {"normal": 0.05, "benign": 0.55, "malignant": 0.40})
    warn = (InputWarning("colour", "Colour Doppler or a colour overlay covers 4% of this image."),)
    out = tmp_path / "report.pdf"
    data = write_report(out, loaded, pred, None, card, input_warnings=warn)
    lines = report_text(data)
    assert lines.index(data.risk.headline) < lines.index("Most probable class: benign (0.55)")  # risk first, classes below
    assert data.risk.headline == "Suspicious for malignancy \u2013 p(malignant) 0.40"
    text = _norm(" ".join(p.extract_text() for p in pypdf.PdfReader(str(out)).pages))
    for s in ("Malignancy assessment", "Suspicious for malignancy", "p(malignant) 0.40",
              "found at least 92% of cancers", "threshold 0.30", "Input check: Colour Doppler", "Class probabilities",
              "malignant: 0.40"):
        assert _norm(s) in text, s
    ARTIFACTS.mkdir(exist_ok=True)
    render_report_page(data, dpi=80).save(str(ARTIFACTS / "report_risk_page1.png"))
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(out), str(ARTIFACTS / "report_risk_pdftoppm")],
                       check=True)


def test_report_without_decision_says_no_validated_threshold(sample_images: list[Path], bundle_dir: Path,
                                                             qapp) -> None:
    loaded = load_image(sample_images[0])
    pred = _pred(loaded, {"normal": 0.9, "benign": 0.08, "malignant": 0.02})
    legacy = dict(load_bundle(bundle_dir).card)
    legacy.pop("decision")  # a card like 1.5.0's, with no rule validated on other hospitals
    data = build_report_data(loaded, pred, None, legacy)
    plain = " ".join(report_text(data))
    assert "No lesion found" in plain and "no validated threshold" in plain
    assert data.input_warnings == ()  # a real ultrasound frame: the input check (run here) has nothing to say
