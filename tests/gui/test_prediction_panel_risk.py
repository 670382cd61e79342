"""The panel leads with the malignancy assessment from the card's decision rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtGui import QPainterPath
from risk_cards import DECISION

from busapp.core.input_check import InputWarning
from busapp.core.model_bundle import default_bundle_dir
from busapp.core.predictor import Prediction
from busapp.gui.prediction_panel import PredictionPanel, list_detail
from busapp.gui.worker import Analysis


def _analysis(probs: dict[str, float], low: bool = False) -> Analysis:
    label = max(probs, key=probs.__getitem__)
    pred = Prediction(label, probs, np.zeros((4, 4), bool), "busnet", "9.9.9", low)
    return Analysis(pred, None, None, QPainterPath(), 0.01)


@pytest.fixture
def card() -> dict:
    c = json.loads((default_bundle_dir() / "card.json").read_text(encoding="utf-8"))
    return {**c, "decision": DECISION}


def test_headline_is_the_band_with_its_meaning(qtbot, card: dict, artifacts) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_model("busnet", "9.9.9", 0.6)
    panel.set_card(card)
    panel.resize(340, 640)
    panel.show()
    a = _analysis({"normal": 0.02, "benign": 0.93, "malignant": 0.05})
    panel.show_result(a)
    assert panel.headline.text().startswith("Low suspicion") and "0.05" in panel.headline.text()
    assert DECISION["bands"][0]["meaning"] in panel.band_meaning.text()
    assert panel.risk_bar.isVisible() and panel.risk_bar.risk.bands and panel.bars.isVisible()
    assert "benign" in panel.class_line.text()  # the class probabilities stay, below
    assert list_detail(a, card) == "low suspicion 0.05"

    a = _analysis({"normal": 0.05, "benign": 0.55, "malignant": 0.40})
    panel.show_result(a)
    assert panel.headline.text().startswith("Suspicious for malignancy")
    assert panel.headline.property("state") == "suspicious"
    assert "92%" in panel.band_meaning.text()
    panel.grab().save(str(artifacts / "panel_risk_suspicious.png"))


def test_normal_says_no_lesion_found(qtbot, card: dict) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_card(card)
    a = _analysis({"normal": 0.9, "benign": 0.08, "malignant": 0.02})
    panel.show_result(a)
    assert panel.headline.text().startswith("No lesion found")
    assert "no lesion" in panel.class_line.text()
    assert list_detail(a, card) == "no lesion found"


def test_card_without_decision_says_so(qtbot, artifacts) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    legacy = json.loads((default_bundle_dir() / "card.json").read_text(encoding="utf-8"))
    del legacy["decision"]  # a card like 1.5.0's, with no rule validated on other hospitals
    panel.set_card(legacy)
    panel.resize(340, 640)
    panel.show()
    panel.show_result(_analysis({"normal": 0.02, "benign": 0.03, "malignant": 0.95}))
    assert "no validated threshold" in panel.headline.text() and "0.95" in panel.headline.text()
    assert "no validated threshold" in panel.band_meaning.text().lower()
    assert not panel.risk_bar.risk.bands
    panel.grab().save(str(artifacts / "panel_risk_unvalidated.png"))


def test_input_warnings_are_shown_and_marked_in_the_list(qtbot, card: dict) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_card(card)
    panel.resize(340, 640)
    panel.show()
    plain = _analysis({"normal": 0.1, "benign": 0.8, "malignant": 0.1})

    class Warned(Analysis):  # as core.analysis.AnalysisResult delivers them through Analysis.result
        input_warnings = (InputWarning("colour", "Colour Doppler covers 4% of this image."),)

    a = Warned(plain.prediction, None, None, QPainterPath(), 0.01)
    panel.show_result(a)
    assert panel.input_warnings.isVisible() and "Colour Doppler" in panel.input_warnings.text()
    assert list_detail(a, card).startswith("\u26a0")
    panel.show_result(_analysis({"normal": 0.1, "benign": 0.8, "malignant": 0.1}))
    assert not panel.input_warnings.isVisible()


def test_a_site_threshold_is_shown_with_its_justification(qtbot, card: dict) -> None:
    from busapp.core.risk import assess
    from busapp.core.site_threshold import SiteThreshold
    from busapp.report.pdf import risk_lines

    site = SiteThreshold(0.5, "ab" * 32, "cd" * 32, 0.92, 0.94, 64, "2026-12-01T22:00:00+00:00")
    plain = _analysis({"normal": 0.05, "benign": 0.55, "malignant": 0.40})

    class AtSite(Analysis):
        risk = assess(plain.prediction, card=card, site=site)

    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_card(card)
    panel.show_result(AtSite(plain.prediction, None, None, QPainterPath(), 0.01))
    assert panel.headline.text().startswith("Intermediate")  # 0.40: suspicious by the card, not at this site
    assert "site threshold 0.50" in panel.subline.text() and "0.30" in panel.subline.text()
    assert any("site threshold 0.50" in line and "model card: 0.30" in line for line in risk_lines(AtSite.risk))


def test_list_dots_carry_the_risk_band_not_one_grey(qtbot, card: dict) -> None:
    """Defect 10 (issue 25): every done row's dot was the same grey, whatever the result."""
    from busapp.gui.image_list import DONE, ImageList
    from busapp.gui.prediction_panel import list_tone

    lst = ImageList()
    qtbot.addWidget(lst)
    results = {1: {"normal": 0.02, "benign": 0.93, "malignant": 0.05},
               2: {"normal": 0.05, "benign": 0.55, "malignant": 0.40}}
    for job, probs in results.items():
        lst.add_image(job, f"{job}.png")
        a = _analysis(probs)
        lst.set_status(job, DONE, list_detail(a, card), list_tone(a, card))
    low, suspicious = lst.dot_colour(1), lst.dot_colour(2)
    assert low != suspicious
    assert suspicious.red() > suspicious.green() and low.green() > low.red()  # red for suspicious, green for low
    legacy = {k: v for k, v in card.items() if k != "decision"}
    assert list_tone(_analysis(results[2]), legacy) is None  # no validated rule: no band to tint
