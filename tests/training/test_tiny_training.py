"""Tiny end-to-end runs of busapp-train (6 images a split, 32 px, 1-2 epochs, no bootstrap):
interrupted and resumed, the bundle works in the app, and each finalize mode writes the card it
should. What is measured here is the plumbing, not the model."""

import csv
import json
import re

import numpy as np
import pytest

pytestmark = pytest.mark.slow
TINY = ["--limit", "6", "--size", "32", "--batch-size", "3", "--run-eagerly"]  # eager: no 15-s graph tracing per fit
FIT = [*TINY, "--epochs", "1"]
FINAL = ["--limit", "6", "--bootstrap", "0"]


def train_cli(*argv) -> int:
    from busapp.training.cli import main

    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def base(data_root, tmp_path_factory):
    """One ``train`` run of 2 epochs, interrupted after the first and resumed."""
    keras = pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("tiny")
    out, work = root / "bundle", root / "work"
    argv = ["train", "--data", data_root, "--out", out, "--work-dir", work, *TINY, "--epochs", "2", "--bootstrap", "0"]
    original = keras.callbacks.CSVLogger.on_epoch_end

    def interrupted(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("simulated interruption")

    with pytest.MonkeyPatch.context() as mp:  # stop right after the first epoch (its backup is written)
        mp.setattr(keras.callbacks.CSVLogger, "on_epoch_end", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train_cli(*argv)
    interrupted_card = (out / "card.json").exists()
    assert train_cli(*argv) == 0
    return {"root": root, "out": out, "work": work, "data": data_root, "interrupted_card": interrupted_card,
            "card": json.loads((out / "card.json").read_text())}


@pytest.fixture(scope="module")
def refit(base):
    """A refit on train + val (last epoch kept) with the base card's temperature and rules."""
    work3, out3 = base["root"] / "work3", base["root"] / "bundle3"
    assert train_cli("fit", "--data", base["data"], "--work-dir", work3, *FIT, "--refit") == 0
    assert train_cli("finalize", "--data", base["data"], "--work-dir", work3, "--out", out3, *FINAL,
                     "--rules-from", base["out"] / "card.json", "--model-version", "9.1") == 0
    return {"work": work3, "out": out3, "card": json.loads((out3 / "card.json").read_text())}


def test_train_resumes_after_an_interruption_and_writes_a_working_bundle(base):
    keras = pytest.importorskip("keras")
    from busapp.core.model_bundle import load_bundle
    from busapp.core.predictor import Predictor

    assert not base["interrupted_card"]
    work, card = base["work"], base["card"]
    with open(work / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]  # resumed at the second epoch
    trained_with = json.loads((work / "config.json").read_text())["trained_with"]
    assert trained_with == {"keras": keras.__version__, "backend": keras.backend.backend()}
    assert card["input"]["size"] == 32 and card["metrics"]["n_test_images"] == 6
    by_site = card["metrics"]["test_by_dataset"]
    assert sum(s["n_images"] for s in by_site.values()) == 6 and set(by_site) <= {"busi", "breast_lesions_usg"}
    assert "ci95" not in card["metrics"]["test"]["accuracy"]  # no bootstrap asked for
    assert (work / "train.log").exists()
    assert "selection_history" not in card and "class_bias" not in card["postprocessing"]
    assert load_bundle(base["out"]).card.postprocessing.temperature == card["postprocessing"]["temperature"]
    pred = Predictor(base["out"]).predict(np.full((120, 90), 100, np.uint8))
    assert pred.mask.shape == (120, 90)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_finalize_chooses_members_on_validation_and_compare_prints_that_table(base, capsys):
    from busapp.core.predictor import Predictor

    work, work2, out2 = base["work"], base["root"] / "work2", base["root"] / "bundle2"
    assert train_cli("fit", "--data", base["data"], "--work-dir", work2, *FIT, "--lesion-pool") == 0
    assert json.loads((work2 / "config.json").read_text())["lesion_pool"] is True
    assert train_cli("finalize", "--data", base["data"], "--work-dir", work, "--ensemble-work-dir", work2,
                     "--out", out2, *FINAL) == 0
    card2 = json.loads((out2 / "card.json").read_text())
    table = card2["training"]["member_selection"]["validation"]
    assert [r["members"] for r in table] == [["work"], ["work2"], ["work", "work2"]]
    chosen = [m["work_dir"] for m in card2["training"]["members"]]
    best = max(table, key=lambda r: (round(r["val_score"], 6), -len(r["members"])))
    assert chosen == best["members"] and len(card2["files"]) == 2
    assert Predictor(out2).predict(np.full((50, 70), 80, np.uint8)).mask.shape == (50, 70)

    capsys.readouterr()
    log_before = (work / "train.log").read_text()
    assert train_cli("compare", "--data", base["data"], "--work-dir", work, "--ensemble-work-dir", work2, "--limit", "6") == 0
    assert (work / "train.log").read_text() == log_before  # compare only reads the runs
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["members"] for r in rows] == [r["members"] for r in table]
    assert [r["members"] for r in rows if r["chosen"]] == [chosen]


def test_refit_carries_the_earlier_cards_rules_over(base, refit):
    from busapp.core.predictor import Predictor

    card, card3, work3 = base["card"], refit["card"], refit["work"]
    assert "data: 12 train" in (work3 / "train.log").read_text()  # 6 train + 6 val images
    assert json.loads((work3 / "best.json").read_text())["epoch"] == 1  # the last epoch, not a "best"
    assert card3["version"] == "9.1" and card3["training"]["fitted_on"] == ["train", "val"]
    for k in ("temperature", "min_area_fraction", "suppress_mask_when_normal", "suppress_mask_when_normal_at_least"):
        assert card3["postprocessing"][k] == card["postprocessing"][k], k
    assert "validation_of_final_graph" not in card3["training"]
    assert card3["postprocessing"]["mask_rules_selection"]["rule"].startswith("carried over from busnet")
    assert Predictor(refit["out"]).predict(np.full((40, 40), 90, np.uint8)).mask.shape == (40, 40)
    # More members than --max-members (default 2) are refused before any work, not silently dropped.
    three = ["finalize", "--data", base["data"], "--work-dir", work3, "--out", base["root"] / "bundle3b", *FINAL,
             "--rules-from", base["out"] / "card.json", "--ensemble-work-dir", work3, "--ensemble-work-dir", work3]
    assert train_cli(*three) == 2
    assert not (base["root"] / "bundle3b").exists()
    assert train_cli(*three, "--max-members", "3") == 0
    card3b = json.loads((base["root"] / "bundle3b" / "card.json").read_text())
    assert card3b["architecture"]["inference"].startswith("3 trained member(s)")


def test_options_belong_to_their_subcommand(base):
    with pytest.raises(SystemExit):  # only fit and train take --train-datasets
        train_cli("finalize", "--data", base["data"], "--train-datasets", "busi")
    with pytest.raises(SystemExit):  # only finalize takes a report
        train_cli("fit", "--data", base["data"], "--calibration-from", "x.json")
    with pytest.raises(SystemExit):  # a report calibrates a refit only
        train_cli("finalize", "--data", base["data"], "--calibration-from", "x.json")
    with pytest.raises(SystemExit):
        train_cli("loso-fit", "--work-dir", base["root"] / "l", "--recipe", "R99")


def test_cross_site_check_measures_a_busi_only_run_on_breast(base, refit, capsys):
    from busapp.training.outline_rules import SUPPRESS_CANDIDATES
    from busapp.training.sites import amend_card

    data, card = base["data"], base["card"]
    work_site = base["root"] / "work-site"
    assert train_cli("fit", "--data", data, "--work-dir", work_site, *FIT, "--refit", "--train-datasets", "busi") == 0
    assert "data: 12 train" in (work_site / "train.log").read_text()
    assert json.loads((work_site / "config.json").read_text())["datasets"] == ["busi"]
    capsys.readouterr()
    assert train_cli("site-report", "--data", data, "--work-dir", work_site, "--rules-from", base["out"] / "card.json",
                     "--limit", "6", "--bootstrap", "0") == 0
    site = json.loads(capsys.readouterr().out)
    assert site["trained_on"] == ["busi"] and site["unseen"] == ["breast_lesions_usg"]
    assert site["unseen_all"]["n_images"] == 6 and list(site["seen_test"]) == ["busi"]
    assert 0 <= site["unseen_all"]["metrics"]["accuracy"]["value"] <= 1
    assert site["unseen_test"]["n_images"] + site["unseen_dev"]["n_images"] == 6
    rows = site["outline_rules"]["rows"]
    assert [(r["suppress_mask_when_normal"], r["suppress_mask_when_normal_at_least"]) for r in rows] == list(SUPPRESS_CANDIDATES)
    # Withholding outlines can only lose Dice and outlines: no rule is the most of both.
    assert all(0 <= r["unseen_dice_mean"] <= rows[0]["unseen_dice_mean"] for r in rows)
    assert all(rows[0]["unseen_lesions_without_outline"] <= r["unseen_lesions_without_outline"] <= 1 for r in rows)
    amended = amend_card(amend_card(card, site), site)  # a second check replaces the first's line
    lines = [x for x in amended["limitations"] if x.startswith("Cross-site check:")]
    assert len(lines) == 1 and "trained on BUSI alone" in lines[0] and "on BrEaST-Lesions-USG's 6 images" in lines[0]
    assert "cross_site_check" not in amended and amended["limitations"][:-1] == card["limitations"]
    assert train_cli("site-report", "--data", data, "--work-dir", refit["work"], "--rules-from", base["out"] / "card.json",
                     "--limit", "6") == 2  # the refit trained on both data sets


def test_select_rules_chooses_the_outline_rule_again_for_a_train_only_bundle(base, refit):
    from busapp.core.predictor import Predictor

    out4 = base["root"] / "bundle4"
    assert train_cli("select-rules", base["out"], "--data", base["data"], "--out", out4, "--limit", "6") == 0
    card4 = json.loads((out4 / "card.json").read_text())
    assert "metrics" not in card4  # measured under the old rule
    keys = ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least")
    chosen4 = {k: card4["postprocessing"][k] for k in keys}
    assert chosen4 in [{k: r[k] for k in keys} for r in card4["postprocessing"]["mask_rules_selection"]["validation"]]
    assert Predictor(out4).predict(np.full((30, 30), 90, np.uint8)).mask.shape == (30, 30)
    # A refit bundle's members saw the validation images: refused.
    assert train_cli("select-rules", refit["out"], "--data", base["data"], "--out", base["root"] / "b5", "--limit", "6") == 2


def test_cross_validation_folds_report_and_the_refit_they_calibrate(base, refit, capsys):
    import keras

    from busapp.core.predictor import Predictor

    data, root = base["data"], base["root"]

    def fold(name: str, k: int, *extra) -> list:
        work = root / name
        assert train_cli("fit", "--data", data, "--work-dir", work, *FIT, "--folds", "2", "--fold", k, *extra) == 0
        return work

    work6 = fold("work6", 1)
    state = json.loads((work6 / "best.json").read_text())
    assert state["epoch"] == 1 and state["selection"] == "last epoch (fixed recipe)" and "val_score" in state
    assert json.loads((work6 / "cv.json").read_text()) == {"folds": 2, "fold": 1}
    n_train, n_val = map(int, re.search(r"data: (\d+) train \(normal x1\), (\d+) val", (work6 / "train.log").read_text()).groups())
    assert n_train + n_val == 12 and n_val > 0
    work7 = fold("work7", 0)

    def cv_report(*runs, zoom: bool = False) -> tuple[int, dict | None]:
        capsys.readouterr()
        args = ["cv-report", "--data", data, "--limit", "6", "--work-dir", runs[0]]
        args += [a for r in runs[1:] for a in ("--ensemble-work-dir", r)] + (["--zoom-in"] if zoom else [])
        rc = train_cli(*args)
        return rc, json.loads(capsys.readouterr().out) if rc == 0 else None

    rc, rep = cv_report(work6, work7)
    assert rc == 0 and rep["n_images"] == 12 and rep["temperature"] > 0 and rep["test_time_views"] == ["image", "mirror"]
    assert 0 <= rep["figures"]["accuracy"] <= 1 and rep["outline_rule"] in rep["outline_rules"]
    assert rep["folds"] == 2 and [f["fold"] for f in rep["per_fold"]] == [0, 1]
    assert sum(f["n_images"] for f in rep["per_fold"]) == 12
    assert cv_report(work6, work6)[0] == 2  # the same run twice

    # The refit (same recipe as these folds) calibrated by that report.
    report_path, out8 = root / "cv.json", root / "bundle8"
    report_path.write_text(json.dumps(rep))

    def refit_with(report, out_dir, *extra) -> int:
        return train_cli("finalize", "--data", data, "--work-dir", refit["work"], "--out", out_dir, *FINAL,
                         "--rules-from", base["out"] / "card.json", "--calibration-from", report, *extra)

    assert refit_with(report_path, out8) == 0
    card8 = json.loads((out8 / "card.json").read_text())
    assert card8["postprocessing"]["temperature"] == rep["temperature"]
    for k in ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least"):
        assert card8["postprocessing"][k] == rep["outline_rule"][k]
    assert card8["cross_validation"]["figures"] == rep["figures"] and "out-of-fold" in card8["training"]["calibration"]
    assert "cross-validation" in card8["training"]["member_selection"]["rule"]
    assert "cross-validation" not in refit["card"]["training"]["member_selection"]["rule"]
    work2 = root / "work2"  # the lesion-pooled run of the ensemble test, if it ran; else any other recipe
    if not work2.exists():
        assert train_cli("fit", "--data", data, "--work-dir", work2, *FIT, "--lesion-pool") == 0
    assert refit_with(report_path, root / "bundle8x", "--ensemble-work-dir", work2) == 2  # not cross-validated

    # One of bundle8's members (extract-members) beside another run: no cross-validation covers the
    # pair, so bundle8's views, temperature and outline rule are carried over, said whose they are.
    members8, out9 = root / "members8", root / "bundle9"
    assert train_cli("extract-members", out8, "--out", members8) == 0
    kept = members8 / card8["training"]["members"][0]["work_dir"]
    assert train_cli("finalize", "--data", data, "--work-dir", kept, "--ensemble-work-dir", work2, "--out", out9, *FINAL,
                     "--rules-from", out8 / "card.json") == 0
    card9 = json.loads((out9 / "card.json").read_text())
    assert [m["work_dir"] for m in card9["training"]["members"]] == [kept.name, "work2"]
    assert card9["architecture"]["test_time_views"] == card8["architecture"]["test_time_views"]
    for k in ("temperature", "suppress_mask_when_normal", "suppress_mask_when_normal_at_least", "min_area_fraction",
              "mask_threshold", "mask_keep"):
        assert card9["postprocessing"][k] == card8["postprocessing"][k], k
    assert "its own members' recipes" in card9["training"]["calibration"] and "cross_validation" not in card9
    assert card9["postprocessing"]["mask_rules_selection"]["rule"].startswith(f"carried over from busnet {card8['version']}")
    assert Predictor(out9).predict(np.full((40, 40), 90, np.uint8)).mask.shape == (40, 40)

    # The zoomed third view: finalize builds that graph from the report, and the card names the views.
    rc, repz = cv_report(work6, work7, zoom=True)
    assert rc == 0 and repz["test_time_views"] == ["image", "mirror", "zoom_in"] and repz["n_images"] == 12
    zoom_path, out8z = root / "cv-zoom.json", root / "bundle8z"
    zoom_path.write_text(json.dumps(repz))
    assert refit_with(zoom_path, out8z) == 0
    card8z = json.loads((out8z / "card.json").read_text())
    assert card8z["architecture"]["test_time_views"] == repz["test_time_views"] and "enlarged" in card8z["architecture"]["inference"]
    assert keras.saving.load_model(out8z / "busnet.keras").get_layer("zoom_in") is not None
    image = np.asarray(np.random.default_rng(5).integers(0, 255, (48, 40)), np.uint8)
    assert Predictor(out8z).predict(image).mask.shape == image.shape
    zoom_path.write_text(json.dumps({**repz, "test_time_views": ["image", "rotated"]}))
    assert refit_with(zoom_path, out8z) == 2

    # An ensemble per fold (a second recipe): every fold needs the same number of runs.
    work9 = fold("work9", 0, "--seed", "3")
    assert cv_report(work6, work7, work9)[0] == 2
    work10 = fold("work10", 1, "--seed", "3")
    rc, rep2 = cv_report(work6, work7, work9, work10)
    assert rc == 0 and rep2["n_images"] == 12 and len(rep2["recipes"]) == 2 and len(rep2["runs"]) == 4
