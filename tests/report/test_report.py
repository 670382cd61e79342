"""The PDF report (its text holds the right values; page 1 saved as a PNG artefact) and PNG exports."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage

from busapp import DISCLAIMER
from busapp.core.audit import AuditLog
from busapp.core.imageio import load_image
from busapp.core.measure import format_measurements, measure_image, measure_mask
from busapp.core.predictor import Prediction
from busapp.core.risk import assess, class_summary
from busapp.report.pdf import render_report_page, report_text, write_report
from busapp.report.render import export_mask_png, export_overlay_png, render_overlay

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pdf_text(path: Path) -> str | None:
    """Text of a PDF via pypdf (pure Python, dev extra) or poppler's pdftotext; None if neither is here."""
    try:
        import pypdf
    except ImportError:
        pypdf = None
    if pypdf is not None:
        text = "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)
    elif shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    else:
        return None
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))  # ligatures, tabs, line breaks


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s))


@pytest.fixture(scope="module")
def predictor():
    from busapp.core.predictor import Predictor

    return Predictor()


@pytest.fixture
def analysed(sample_images: list[Path], predictor):
    loaded = load_image(sample_images[1])
    pred = predictor.predict(loaded.frame(0))
    return loaded, pred


def test_report_pdf_holds_the_values(analysed, predictor, qapp, tmp_path: Path) -> None:
    loaded, pred = analysed
    m = measure_mask(pred.mask, (0.078125, 0.078125), "user calibrated")
    audit = AuditLog(tmp_path / "audit.jsonl")
    out = tmp_path / "new folder" / "report.pdf"
    data = write_report(out, loaded, pred, m, predictor.bundle.card, audit=audit)

    raw = out.read_bytes()
    assert raw.startswith(b"%PDF-") and b"%%EOF" in raw[-64:]
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", raw)) == 1  # one page
    assert not [p for p in out.parent.iterdir() if p.suffix == ".tmp"]  # written atomically

    sha = hashlib.sha256(loaded.path.read_bytes()).hexdigest()
    assert data.sha256 == sha
    expected = [
        loaded.path.name,
        sha,
        class_summary(pred),
        assess(pred, card=predictor.bundle.card).headline,
        *[f"{c}: {p:.2f}" for c, p in pred.probabilities.items()],  # core.wording: probabilities, 2 decimals
        *[v for _, v in format_measurements(m)],
        "USER CALIBRATED",
        f"{pred.model_name} {pred.model_version}",
        data.generated.strftime("%Y-%m-%d %H:%M"),
        DISCLAIMER,
    ]
    test_metrics = predictor.bundle.card["metrics"]["test"]
    expected += [f"Accuracy {test_metrics['accuracy']['value']:.2f}", f"{test_metrics['dice_mean']['value']:.2f}"]
    if m is not None:
        assert "mm²" in expected[len(pred.probabilities) + 4]
    # The plain-text rendering of the report carries every value...
    plain = norm(" ".join(report_text(data)))
    for s in expected:
        if not s.startswith("Accuracy"):
            assert norm(s) in plain, s
    # ... and so does the PDF itself.
    text = pdf_text(out)
    if text is None:
        pytest.skip("neither pypdf nor pdftotext is installed: PDF text not checked (pip install pypdf)")
    for s in expected:
        assert norm(s) in text, s

    entry = json.loads((tmp_path / "audit.jsonl").read_text(encoding="utf-8"))
    assert entry["action"] == "export_report" and entry["sha256"] == sha
    assert loaded.path.name not in json.dumps(entry)


def test_report_page_artifact(analysed, predictor, qapp, tmp_path: Path) -> None:
    """Page 1 as PNG in test-artifacts/ (Qt rendering of the same drawing; pdftoppm's too if present)."""
    loaded, pred = analysed
    m = measure_image(loaded, pred.mask)  # a PNG: no pixel size, so pixels
    out = tmp_path / "report.pdf"
    data = write_report(out, loaded, pred, m, predictor.bundle.card)
    ARTIFACTS.mkdir(exist_ok=True)
    page = render_report_page(data, dpi=100)
    assert page.save(str(ARTIFACTS / "report_page1.png"))
    shutil.copyfile(out, ARTIFACTS / "report.pdf")
    a = np.asarray(Image.open(ARTIFACTS / "report_page1.png").convert("RGB"))
    assert a.shape[:2] == (1169, 827)  # A4 at 100 dpi
    assert (a < 128).any(axis=2).mean() > 0.01  # not blank: text and pictures were drawn
    if shutil.which("pdftoppm"):
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "80",
                "-png",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(out),
                str(ARTIFACTS / "report_pdftoppm"),
            ],
            check=True,
        )
        assert (ARTIFACTS / "report_pdftoppm.png").stat().st_size > 10_000
    if m is not None:
        assert m.unit == "px"
        plain = " ".join(report_text(data))
        assert "pixel size unknown" in plain and " px" in plain


def test_report_without_lesion(sample_images: list[Path], predictor, qapp, tmp_path: Path) -> None:
    loaded = load_image(sample_images[0])
    pred = Prediction(
        label="normal",
        probabilities={"normal": 0.55, "benign": 0.3, "malignant": 0.15},
        mask=np.zeros((loaded.height, loaded.width), bool),
        model_name="busnet",
        model_version="test",
        low_confidence=True,
    )
    data = write_report(tmp_path / "r.pdf", loaded, pred, None, {"name": "busnet"})
    plain = " ".join(report_text(data))
    assert "no lesion outlined" in plain and "Uncertain \u2013 leans normal" in plain
    text = pdf_text(tmp_path / "r.pdf")
    if text is not None:
        assert "no lesion outlined" in text and "LOW CONFIDENCE" in text and "no test metrics" in text


def test_overlay_and_mask_exports(qapp, tmp_path: Path) -> None:
    image = np.full((120, 160), 90, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:70, 40:100] = True
    m = measure_mask(mask, None)
    plain = render_overlay(image, mask, None)
    with_cal = render_overlay(image, mask, m)
    assert (plain.width(), plain.height()) == (160, 120)

    def rgb(img, x, y):
        c = img.pixelColor(x, y)
        return (c.red(), c.green(), c.blue())

    assert rgb(plain, 150, 110) == (90, 90, 90)  # outside: untouched
    r, g, b = rgb(plain, 70, 50)
    assert r > g > b and r > 100  # inside: yellow tint
    # Calipers: light-blue pixels along the measured axes, absent without them.
    def arr(img) -> np.ndarray:
        img = img.convertToFormat(QImage.Format.Format_RGBA8888)
        return np.asarray(Image.frombytes("RGBA", (img.width(), img.height()), bytes(img.constBits())))[..., :3]

    a, c = arr(plain).astype(int), arr(with_cal).astype(int)
    changed = np.abs(a - c).sum(-1) > 30
    assert changed.sum() > 50
    blueish = (c[..., 2] > c[..., 0] + 40) & changed
    (x0, y0), (x1, y1) = m.longest_axis
    mid = (round((y0 + y1) / 2), round((x0 + x1) / 2))
    assert blueish[mid[0] - 3 : mid[0] + 4, mid[1] - 3 : mid[1] + 4].any()
    assert not (np.abs(a - arr(render_overlay(image, mask, m, calipers=False)).astype(int)).sum(-1) > 0).any()

    export_overlay_png(tmp_path / "o" / "overlay.png", image, mask, m)
    over = np.asarray(Image.open(tmp_path / "o" / "overlay.png").convert("RGB"))
    assert over.shape == (120, 160, 3) and tuple(over[110, 150]) == (90, 90, 90)
    export_mask_png(tmp_path / "o" / "mask.png", mask)
    back = np.asarray(Image.open(tmp_path / "o" / "mask.png"))
    assert back.dtype == np.uint8 and set(np.unique(back)) == {0, 255}
    assert np.array_equal(back > 127, mask)
    with pytest.raises(ValueError):
        render_overlay(image, mask[:10], None)


def test_report_says_why_an_outline_is_withheld(sample_images: list[Path], qapp) -> None:
    from busapp.report.pdf import build_report_data

    loaded = load_image(sample_images[0])
    note = "No outline: the model gives normal a probability of 0.31 (outlines are withheld from 0.20)."
    pred = Prediction(label="benign", probabilities={"normal": 0.31, "benign": 0.52, "malignant": 0.17},
                      mask=np.zeros((loaded.height, loaded.width), bool), model_name="busnet",
                      model_version="test", low_confidence=True, outline_note=note)
    data = build_report_data(loaded, pred, None, {"name": "busnet"})
    assert note in " ".join(report_text(data))


def test_report_gives_cross_validation_figures_beside_the_test_figures(sample_images: list[Path], qapp) -> None:
    from busapp.report.pdf import build_report_data

    loaded = load_image(sample_images[0])
    pred = Prediction(label="benign", probabilities={"normal": 0.1, "benign": 0.7, "malignant": 0.2},
                      mask=np.zeros((loaded.height, loaded.width), bool), model_name="busnet", model_version="test",
                      low_confidence=False)
    card = {"name": "busnet", "metrics": {"test": {"accuracy": {"value": 0.875, "ci95": [0.8, 0.94]}}}}
    plain = " ".join(report_text(build_report_data(loaded, pred, None, card)))
    assert "0.88  (95% CI 0.80-0.94)" in plain and "cross-validation" not in plain
    card["cross_validation"] = {"figures": {"accuracy": 0.7771}}
    plain = " ".join(report_text(build_report_data(loaded, pred, None, card)))
    assert "0.88  (95% CI 0.80-0.94; cross-validation 0.78)" in plain
