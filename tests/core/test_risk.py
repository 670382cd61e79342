"""The malignancy assessment: bands and figures from the card's decision block, never constants."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from risk_cards import DECISION, bundle_with_decision

from busapp.core.model_bundle import load_bundle
from busapp.core.risk import CSV_COLUMNS, NO_THRESHOLD, assess, json_fields, parse_decision


def probs(normal: float, benign: float, malignant: float) -> dict[str, float]:
    return {"normal": normal, "benign": benign, "malignant": malignant}


@pytest.fixture(scope="module")
def decision_bundle(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(bundle_with_decision(tmp_path_factory.mktemp("card")))


def test_card_copy_keeps_model_files_verified(decision_bundle) -> None:
    decision_bundle.verify()  # sha256 of every model file still matches: only the card differs
    assert "decision" in decision_bundle.card


@pytest.mark.parametrize(("p", "band", "suspicious"), [
    (0.0, "low suspicion", False), (0.099, "low suspicion", False), (0.1, "intermediate", False),
    (0.2999, "intermediate", False), (0.3, "suspicious for malignancy", True), (1.0, "suspicious for malignancy", True),
])
def test_band_edges_follow_the_card(decision_bundle, p: float, band: str, suspicious: bool) -> None:
    r = assess(probs(0.0, 1.0 - p, p), decision_bundle)
    assert (r.band, r.suspicious, r.validated, r.threshold) == (band, suspicious, True, 0.3)
    assert r.headline.lower().startswith(band)
    assert f"{p:.2f}" in r.headline


def test_moving_the_card_threshold_moves_the_band(tmp_path: Path) -> None:
    d = copy.deepcopy(DECISION)
    d["suspicious_threshold"] = 0.5
    d["bands"][1]["to"] = d["bands"][2]["from"] = 0.5
    r = assess(probs(0.1, 0.5, 0.4), load_bundle(bundle_with_decision(tmp_path, d)))
    assert (r.band, r.suspicious, r.threshold) == ("intermediate", False, 0.5)


def test_suspicious_meaning_comes_from_the_measured_sensitivities(decision_bundle) -> None:
    r = assess(probs(0.1, 0.3, 0.6), decision_bundle)
    assert r.band_meaning == "at this level the model found at least 92% of cancers at hospitals it had not seen"
    low = assess(probs(0.1, 0.88, 0.02), decision_bundle)
    assert low.band_meaning == DECISION["bands"][0]["meaning"]


def test_card_without_decision_says_no_validated_threshold(bundle_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    copy = tmp_path / "no-decision"
    shutil.copytree(bundle_dir, copy)  # a card like 1.5.0's: no decision rule validated on other sites
    card = json.loads((copy / "card.json").read_text())
    del card["decision"]
    (copy / "card.json").write_text(json.dumps(card))
    bundle = load_bundle(copy)
    assert "decision" not in bundle.card
    r = assess(probs(0.02, 0.03, 0.95), bundle)
    assert (r.validated, r.band, r.suspicious, r.threshold) == (False, None, None, None)
    assert NO_THRESHOLD in r.headline and "0.95" in r.headline
    assert json_fields(r) == {"suspicious": None, "threshold": None, "risk": r.to_json()}


def test_normal_is_about_the_image_but_never_hides_a_suspicious_score(decision_bundle) -> None:
    quiet = assess(probs(0.9, 0.08, 0.02), decision_bundle)
    assert quiet.headline.startswith("No lesion found") and quiet.band == "low suspicion"
    assert quiet.list_text == "no lesion found"
    loud = assess(probs(0.5, 0.1, 0.4), decision_bundle)
    assert not loud.lesion_found and loud.suspicious
    assert loud.headline.startswith("Suspicious for malignancy")


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("suspicious_threshold"),
    lambda d: d["bands"][1].update({"to": 0.25}),  # gap
    lambda d: d.update({"suspicious_threshold": 0.4}),  # last band does not start at the threshold
    lambda d: d.update({"score": "p_lesion"}),
])
def test_malformed_decision_falls_back_with_a_reason(tmp_path: Path, breakage) -> None:
    d = copy.deepcopy(DECISION)
    breakage(d)
    card = json.loads(json.dumps({"decision": d}))
    r = assess(probs(0.1, 0.5, 0.4), card=card)
    assert not r.validated and NO_THRESHOLD in r.headline and r.note


def test_real_images_get_the_band_of_their_probability(decision_bundle, sample_images: list[Path]) -> None:
    from busapp.core.imageio import load_image
    from busapp.core.predictor import Predictor

    pred = Predictor(decision_bundle.directory)
    dec = parse_decision(decision_bundle.card)
    seen = set()
    for path in sample_images:
        p = pred.predict(load_image(path).frame(0))
        r = assess(p, pred.bundle)
        assert r.p_malignant == pytest.approx(p.probabilities["malignant"])
        b = next(b for b in dec.bands if b.name == r.band)
        assert b.lower <= r.p_malignant <= b.upper
        assert set(r.csv_values()) == set(CSV_COLUMNS)
        seen.add(r.band)
    assert seen  # at least one image assessed
