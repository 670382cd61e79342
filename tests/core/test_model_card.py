"""The typed model card: what the runtime needs is checked with a message naming the field, and
the figures of 1.5.0's card and of busnet 2's (held-out sites, three sites, a decision threshold)
are formatted the same way for About, the report and the README."""

import copy
import json
from pathlib import Path

import pytest

from busapp.core import card_format as fmt
from busapp.core.model_bundle import ModelBundleError, load_bundle
from busapp.core.model_card import CardError, ModelCard

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "models" / "busnet" / "card.json"
# busnet 1.5.0's card as it shipped (two sites, no decision rule): the older shape every reader must
# still take (a hospital may keep an older bundle).
LEGACY = REPO / "tests" / "data" / "card-busnet-1.5.0.json"
SITES = ("busi", "breast_lesions_usg", "bus_uclm")


def raw() -> dict:
    return json.loads(LEGACY.read_text())


def test_shipped_busnet2_card_reads_with_its_decision_and_three_sites():
    card = ModelCard.from_dict(json.loads(CARD.read_text()))
    assert card.version.startswith("2.") and card.input_size == card["training"]["config"]["size"] in (192, 256)
    assert card.decision is not None and set(card.decision.per_site) == set(SITES)
    assert set(card.metrics.test_by_dataset) == set(SITES) and card.second_stage is not None
    assert card.input_check is not None


def fig(v: float, lo: float, hi: float) -> dict:
    return {"value": v, "ci95": [lo, hi]}


def busnet2_card() -> dict:
    """1.5.0's card with busnet 2's additions (contract 3 and 4 of the brief), made-up figures."""
    card = raw()
    card["metrics"]["held_out_site"] = {
        s: {"auc_benign_vs_malignant": fig(0.90 - i / 100, 0.85, 0.95), "ece": fig(0.05, 0.03, 0.08),
            "dice_mean": fig(0.81, 0.78, 0.84)} for i, s in enumerate(SITES)}
    card["metrics"]["test_by_dataset"]["bus_uclm"] = {
        "n_images": 70, "n_normal_images": 30, "metrics": {"accuracy": fig(0.9, 0.82, 0.96)}}
    card["decision"] = {
        "score": "p_malignant", "suspicious_threshold": 0.18,
        "bands": [{"name": "low suspicion", "from": 0.0, "to": 0.05, "meaning": "m1"},
                  {"name": "intermediate", "from": 0.05, "to": 0.18, "meaning": "m2"},
                  {"name": "suspicious for malignancy", "from": 0.18, "to": 1.0, "meaning": "m3"}],
        "per_site": {s: {"sensitivity": fig(0.93 + i / 100, 0.9, 0.97), "specificity": fig(0.6, 0.5, 0.7),
                         "n_malignant": 50 + i, "n_benign": 100} for i, s in enumerate(SITES)},
        "chosen_on": "the leave-one-site-out predictions: sensitivity >= 0.92 on every held-out site.",
    }
    card["input_check"] = {"max_p_normal_disagreement": 0.3}
    return card


def test_legacy_card_reads_as_typed_fields_and_as_its_json():
    card = ModelCard.from_dict(raw())
    assert card.classes == ("normal", "benign", "malignant") and card.input_size == 256
    assert card.files["tflite"].path == "busnet.tflite" and len(card.files["tflite"].sha256) == 64
    assert card.postprocessing.mask_keep == "all" and 0 < card.postprocessing.low_confidence_below < 1
    assert card.decision is None and card.input_check is None  # 1.5.0 ships no threshold
    assert card.metrics.test["accuracy"].ci95[0] < card.metrics.test["accuracy"].value
    assert set(card.metrics.test_by_dataset) == {"busi", "breast_lesions_usg"}
    assert card["training"]["counts"] == raw()["training"]["counts"]  # provenance reads as the JSON
    with pytest.raises(TypeError):
        card.files["x"] = None  # read-only


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["files"]["tflite"].pop("sha256"), "files.tflite.sha256"),
    (lambda c: c["files"].pop("tflite"), "no 'tflite'"),
    (lambda c: c["files"]["tflite"].update(path="../evil.tflite"), "inside the bundle"),
    (lambda c: c["postprocessing"].update(mask_keep="biggest"), "mask_keep"),
    (lambda c: c["postprocessing"].update(mask_threshold=1.5), "between 0 and 1"),
    (lambda c: c["input"].update(size="256"), "input.size"),
    (lambda c: c.pop("classes"), "no 'classes'"),
    (lambda c: c["decision"]["bands"].pop(1), "cover 0 to 1"),
    (lambda c: c["decision"].update(suspicious_threshold=0.5), "not the start of a band"),
    (lambda c: c["decision"]["per_site"]["busi"].pop("specificity"), "decision.per_site.busi"),
])
def test_bad_cards_are_refused_naming_the_field(edit, message, tmp_path):
    card = busnet2_card()
    edit(card)
    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(card)
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelBundleError, match=f"{tmp_path / 'card.json'}.*unreadable or incomplete"):
        load_bundle(tmp_path, verify=False)


def test_busnet2_card_decision_and_bands():
    card = ModelCard.from_dict(busnet2_card())
    d = card.decision
    assert d.suspicious_threshold == 0.18 and [b.name for b in d.bands][-1] == "suspicious for malignancy"
    assert d.band_for(0.01).name == "low suspicion" and d.band_for(0.18).name == "suspicious for malignancy"
    assert d.band_for(1.0).name == "suspicious for malignancy"
    assert d.per_site["bus_uclm"].sensitivity.value == pytest.approx(0.95)
    assert dict(card.input_check) == {"max_p_normal_disagreement": 0.3}
    assert set(card.metrics.held_out_site) == set(SITES)


def test_readme_table_of_busnet2_has_held_out_sites_and_threshold_rows():
    card = busnet2_card()
    table = fmt.markdown_table(card).splitlines()
    head = table[0].split(" | ")
    assert "held-out site: BUS-UCLM (Spain)" in head and "test: BUS-UCLM (Spain) (70)" in head
    auc = next(r for r in table if r.startswith("| AUC benign vs malignant |")).split(" | ")
    i = head.index("held-out site: BrEaST-Lesions-USG (Poland)")
    assert auc[i] == "0.890 (0.85\u20130.95)"
    sens = next(r for r in table if r.startswith("| Sensitivity at p(malignant) ≥ 0.18 |")).split(" | ")
    assert sens[head.index("held-out site: BUS-UCLM (Spain)")].strip(" |") == "0.950 (0.90\u20130.97)"
    assert sens[1] == ""  # the pooled test column has no threshold figure
    assert len({len(r.split("|")) for r in table}) == 1  # every row has every column
    lines = fmt.decision_lines(card)
    assert "0.18" in lines[0] and len(lines) == 4 and "BUS-UCLM (Spain) (52 cancers, 100 benign)" in lines[3]


def test_one_formatter_for_about_report_and_readme():
    card = ModelCard.from_dict(raw())
    acc = card.metrics.test["accuracy"]
    rows = dict(fmt.report_metric_rows(card))
    assert rows["Accuracy"].startswith(f"{acc.value:.2f}  (95% CI {acc.ci95[0]:.2f}-{acc.ci95[1]:.2f}")
    assert f"{acc.value:.3f} ({acc.ci95[0]:.2f}\u2013{acc.ci95[1]:.2f})" in fmt.markdown_table(card)
    # A partial plain card (a report's test card) works too; nothing is invented.
    partial = {"metrics": {"test": {"accuracy": {"value": 0.875, "ci95": [0.8, 0.94]}}}}
    assert fmt.report_metric_rows(partial) == [("Accuracy", "0.88  (95% CI 0.80-0.94)")]
    assert fmt.report_metric_rows({}) == [] and fmt.decision_lines(partial) == []
    assert fmt.value_text(0.996) == "0.996" and fmt.value_text(0.9951) == "0.995"  # never a false 1.00
    assert fmt.value_text(None) == "" and fmt.value_text(0.5) == "0.50"


def test_about_shows_held_out_sites_and_threshold():
    pytest.importorskip("PySide6")
    from busapp.gui.about import model_card_html

    html = model_card_html(ModelCard.from_dict(busnet2_card()))
    assert "Decision threshold" in html and "p(malignant) 0.18" in html
    assert "never seen in training" in html and "BUS-UCLM (Spain) (70)" in html
    plain = model_card_html(copy.deepcopy(raw()))
    assert "Decision threshold" not in plain and "never seen" not in plain
