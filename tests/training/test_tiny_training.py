"""A tiny end-to-end run of busapp-train: interrupted, resumed, and the bundle works in the app."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_tiny_training_run_resumes_and_writes_a_working_bundle(data_root, tmp_path, monkeypatch, capsys):
    keras = pytest.importorskip("keras")
    from busapp.core.predictor import Predictor
    from busapp.training.cli import main

    out, work = tmp_path / "bundle", tmp_path / "work"
    argv = ["--data", str(data_root), "--out", str(out), "--work-dir", str(work),
            "--limit", "10", "--epochs", "2", "--size", "64", "--batch-size", "4", "--bootstrap", "20"]

    # Interrupt the first run right after its first epoch (the backup is written by then).
    original = keras.callbacks.CSVLogger.on_epoch_end

    def interrupted(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["train", *argv])
    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", original)
    assert not (out / "card.json").exists()

    assert main(["train", *argv]) == 0
    with open(work / "history.csv") as f:
        epochs = [row["epoch"] for row in csv.DictReader(f)]
    assert epochs == ["0", "1"]  # resumed at the second epoch; the first was not trained again
    trained_with = json.loads((work / "config.json").read_text())["trained_with"]
    assert trained_with == {"keras": keras.__version__, "backend": keras.backend.backend()}

    card = json.loads((out / "card.json").read_text())
    assert card["input"]["size"] == 64 and card["metrics"]["n_test_images"] == 10
    by_site = card["metrics"]["test_by_dataset"]
    assert sum(s["n_images"] for s in by_site.values()) == 10 and set(by_site) <= {"busi", "breast_lesions_usg"}
    assert (work / "train.log").exists()
    pred = Predictor(out).predict(np.full((120, 90), 100, np.uint8))
    assert pred.mask.shape == (120, 90)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)

    # A second run whose classifier also pools under the predicted lesion; finalize considers
    # both runs and records which it averaged, chosen on validation.
    work2, out2 = tmp_path / "work2", tmp_path / "bundle2"
    argv2 = [a if a != str(work) else str(work2) for a in argv]
    assert main(["fit", *argv2, "--epochs", "1", "--lesion-pool"]) == 0
    assert json.loads((work2 / "config.json").read_text())["lesion_pool"] is True
    argv3 = [a if a != str(out) else str(out2) for a in argv]
    assert main(["finalize", *argv3, "--ensemble-work-dir", str(work2)]) == 0
    card2 = json.loads((out2 / "card.json").read_text())
    table = card2["training"]["member_selection"]["validation"]
    assert [r["members"] for r in table] == [["work"], ["work2"], ["work", "work2"]]
    chosen = [m["work_dir"] for m in card2["training"]["members"]]
    best = max(table, key=lambda r: (round(r["val_score"], 6), -len(r["members"])))
    assert chosen == best["members"]
    assert len(card2["files"]) == 2
    pred2 = Predictor(out2).predict(np.full((50, 70), 80, np.uint8))
    assert pred2.mask.shape == (50, 70)

    # ``compare`` prints the same table from the validation split alone.
    capsys.readouterr()
    log_before = (work / "train.log").read_text()
    assert main(["compare", *argv, "--ensemble-work-dir", str(work2)]) == 0
    assert (work / "train.log").read_text() == log_before  # compare only reads the runs
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["members"] for r in rows] == [r["members"] for r in table]
    assert [r["members"] for r in rows if r["chosen"]] == [chosen]

    # A refit: train + val, last epoch kept; finalize carries the temperature and mask rules of
    # an earlier card over instead of fitting them on validation images the members saw.
    work3, out3 = tmp_path / "work3", tmp_path / "bundle3"
    argv4 = ["--data", str(data_root), "--out", str(out3), "--work-dir", str(work3), *argv[6:]]
    assert main(["fit", *argv4, "--refit"]) == 0
    assert "data: 20 train" in (work3 / "train.log").read_text()  # 10 train + 10 val images
    assert json.loads((work3 / "best.json").read_text())["epoch"] == 2  # the last epoch, not a "best"
    assert main(["finalize", *argv4, "--refit", "--rules-from", str(out / "card.json"), "--model-version", "9.1"]) == 0
    card3 = json.loads((out3 / "card.json").read_text())
    assert card3["version"] == "9.1" and card3["training"]["fitted_on"] == ["train", "val"]
    for k in ("temperature", "min_area_fraction", "suppress_mask_when_normal"):
        assert card3["postprocessing"][k] == card["postprocessing"][k]
    assert "validation_of_final_graph" not in card3["training"]
    assert Predictor(out3).predict(np.full((40, 40), 90, np.uint8)).mask.shape == (40, 40)
    # More members than --max-members (default 2) are refused, not silently dropped.
    three = [*argv4, "--refit", "--rules-from", str(out / "card.json"), "--ensemble-work-dir", str(work3),
             "--ensemble-work-dir", str(work3)]
    assert main(["finalize", *three]) == 2
    assert main(["finalize", *three, "--max-members", "3"]) == 0
    assert json.loads((out3 / "card.json").read_text())["architecture"]["inference"].startswith("3 trained member(s)")

    # A cross-site check: a refit on BUSI alone, measured with the card's views and rules on
    # BrEaST images (none of which it saw) and on BUSI's test images; a run that saw both is refused.
    work_site = tmp_path / "work-site"
    argv_site = ["--data", str(data_root), "--work-dir", str(work_site), *argv[6:]]
    assert main(["fit", *argv_site, "--refit", "--train-datasets", "busi"]) == 0
    assert "data: 20 train" in (work_site / "train.log").read_text()
    assert json.loads((work_site / "config.json").read_text())["datasets"] == ["busi"]
    capsys.readouterr()
    site_args = ["site-report", *argv_site[:4], "--rules-from", str(out / "card.json"), "--limit", "6", "--bootstrap", "20"]
    assert main(site_args) == 0
    site = json.loads(capsys.readouterr().out)
    assert site["trained_on"] == ["busi"] and site["unseen"] == ["breast_lesions_usg"]
    assert site["unseen_all"]["n_images"] == 6 and list(site["seen_test"]) == ["busi"]
    assert 0 <= site["unseen_all"]["metrics"]["accuracy"]["value"] <= 1
    assert site["unseen_test"]["n_images"] + site["unseen_dev"]["n_images"] == 6
    rows = site["outline_rules"]["rows"]
    from busapp.training.finalize import SUPPRESS_CANDIDATES

    assert [(r["suppress_mask_when_normal"], r["suppress_mask_when_normal_at_least"]) for r in rows] == list(SUPPRESS_CANDIDATES)
    assert SUPPRESS_CANDIDATES[0] == (False, None)
    # Withholding outlines can only lose Dice and outlines: no rule is the most of both.
    assert all(0 <= r["unseen_dice_mean"] <= rows[0]["unseen_dice_mean"] for r in rows)
    assert all(rows[0]["unseen_lesions_without_outline"] <= r["unseen_lesions_without_outline"] <= 1 for r in rows)
    assert (work_site / "site-check" / "card.json").exists()
    from busapp.training.sites import amend_card

    amended = amend_card(amend_card(card, site), site)  # a second check replaces the first's line
    lines = [x for x in amended["limitations"] if x.startswith("Cross-site check:")]
    assert len(lines) == 1 and "trained on BUSI alone" in lines[0] and "on BrEaST-Lesions-USG's 6 images" in lines[0]
    assert amended["cross_site_check"] == site and amended["limitations"][:-1] == card["limitations"]
    assert main(["site-report", "--data", str(data_root), "--work-dir", str(work3), "--rules-from", str(out / "card.json"),
                 "--limit", "6"]) == 2  # work3 trained on both data sets
    with pytest.raises(SystemExit):  # only fit takes --train-datasets
        main(["finalize", *argv4, "--train-datasets", "busi"])

    # Mask rules chosen again on validation for a train-only bundle (a refit then carries them
    # over); a refit bundle is refused, as its members saw the validation images.
    out4 = tmp_path / "bundle4"
    assert main(["select-rules", str(out), *argv4[:2], "--out", str(out4), "--limit", "10"]) == 0
    card4 = json.loads((out4 / "card.json").read_text())
    assert "metrics" not in card4  # measured under the old rules
    chosen4 = {k: card4["postprocessing"][k] for k in
               ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least", "min_area_fraction")}
    assert {**chosen4} in [{k: r[k] for k in chosen4} for r in card4["postprocessing"]["mask_rules_selection"]["validation"]]
    assert Predictor(out4).predict(np.full((30, 30), 90, np.uint8)).mask.shape == (30, 30)
    assert main(["select-rules", str(out3), *argv4[:2], "--out", str(tmp_path / "bundle5"), "--limit", "10"]) == 2

    # A cross-validation fold: train + val split by duplicate group, one fold held out, its scores
    # logged every epoch but the last epoch kept (held-out outputs must not choose the checkpoint).
    work6 = tmp_path / "work6"
    argv6 = ["--data", str(data_root), "--work-dir", str(work6), *argv[6:]]
    assert main(["fit", *argv6, "--folds", "2", "--fold", "1"]) == 0
    state = json.loads((work6 / "best.json").read_text())
    assert state["epoch"] == 2 and state["selection"] == "last epoch (fixed recipe)" and "val_score" in state
    assert json.loads((work6 / "cv.json").read_text()) == {"folds": 2, "fold": 1}
    n_train, n_val = map(int, re.search(r"data: (\d+) train \(normal x1\), (\d+) val", (work6 / "train.log").read_text()).groups())
    assert n_train + n_val == 20 and n_val > 0

    # The other fold, then the out-of-fold report over both: every development image once.
    work7 = tmp_path / "work7"
    argv7 = ["--data", str(data_root), "--work-dir", str(work7), *argv[6:]]
    assert main(["fit", *argv7, "--folds", "2", "--fold", "0"]) == 0
    capsys.readouterr()
    assert main(["cv-report", *argv6, "--ensemble-work-dir", str(work7)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_images"] == 20 and rep["temperature"] > 0 and rep["test_time_views"] == ["image", "mirror"]
    assert 0 <= rep["figures"]["accuracy"] <= 1 and rep["outline_rule"] in rep["outline_rules"]
    assert main(["cv-report", *argv6, "--ensemble-work-dir", str(work6)]) == 2  # the same run twice
    assert rep["folds"] == 2 and [f["fold"] for f in rep["per_fold"]] == [0, 1]
    assert sum(f["n_images"] for f in rep["per_fold"]) == 20

    # The refit (same recipe as these folds) calibrated by that report: its out-of-fold
    # temperature and outline rule, and the cross-validation figures in the card.
    report_path, out8 = tmp_path / "cv.json", tmp_path / "bundle8"
    report_path.write_text(json.dumps(rep))
    argv8 = [a if a != str(out3) else str(out8) for a in argv4]
    refit8 = [*argv8, "--refit", "--rules-from", str(out / "card.json"), "--calibration-from", str(report_path)]
    assert main(["finalize", *refit8]) == 0
    card8 = json.loads((out8 / "card.json").read_text())
    assert card8["postprocessing"]["temperature"] == rep["temperature"]
    for k in ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least", "min_area_fraction"):
        assert card8["postprocessing"][k] == rep["outline_rule"][k]
    assert card8["cross_validation"]["figures"] == rep["figures"] and "out-of-fold" in card8["training"]["calibration"]
    assert card8["postprocessing"]["mask_keep"] == rep["mask_postprocessing"]["mask_keep"]
    assert card8["postprocessing"]["mask_threshold"] == rep["mask_postprocessing"]["mask_threshold"]
    assert card8["training"]["calibration_selection"]["bias_adopted"] == rep["calibration"]["bias_adopted"]
    # The recipes came from their cross-validation, not from the --rules-from card (as card3's did).
    assert "cross-validation" in card8["training"]["member_selection"]["rule"]
    assert "cross-validation" not in card3["training"]["member_selection"]["rule"]
    assert main(["finalize", *refit8, "--ensemble-work-dir", str(work2)]) == 2  # work2's recipe was not cross-validated

    # A bundle keeping one of bundle8's members (extract-members) beside another run: no
    # cross-validation covers that pair, so bundle8's views, temperature and outline rule are
    # carried over, and the card says whose they are.
    members8, out9 = tmp_path / "members8", tmp_path / "bundle9"
    assert main(["extract-members", str(out8), "--out", str(members8)]) == 0
    kept = members8 / card8["training"]["members"][0]["work_dir"]
    swap9 = {str(out3): str(out9), str(work3): str(kept)}
    assert main(["finalize", *[swap9.get(a, a) for a in argv4], "--refit", "--rules-from", str(out8 / "card.json"),
                 "--ensemble-work-dir", str(work2)]) == 0
    card9 = json.loads((out9 / "card.json").read_text())
    assert [m["work_dir"] for m in card9["training"]["members"]] == [kept.name, "work2"]
    assert card9["architecture"]["test_time_views"] == card8["architecture"]["test_time_views"]
    for k in ("temperature", "suppress_mask_when_normal", "suppress_mask_when_normal_at_least", "min_area_fraction",
              "mask_threshold", "mask_keep"):
        assert card9["postprocessing"][k] == card8["postprocessing"][k], k
    assert "its own members' recipes" in card9["training"]["calibration"] and "cross_validation" not in card9
    assert card9["postprocessing"]["mask_rules_selection"]["rule"].startswith(f"carried over from busnet {card8['version']}")
    assert Predictor(out9).predict(np.full((40, 40), 90, np.uint8)).mask.shape == (40, 40)

    # A report that adopted a class bias and the largest region: the graph adds the bias to the
    # tempered logits (same members and temperature: probabilities shift by exp(b)), the card says so.
    bias = [0.4, -0.1, -0.3]
    forced = {**rep, "class_bias": bias, "mask_postprocessing": {**rep["mask_postprocessing"], "mask_threshold": 0.4,
                                                                 "mask_keep": "largest"}}
    forced_path, out8b = tmp_path / "cv-forced.json", tmp_path / "bundle8b"
    forced_path.write_text(json.dumps(forced))

    def refit_with(report: Path, out_dir: Path) -> list[str]:
        """refit8 with another cross-validation report and bundle folder."""
        swap = {str(report_path): str(report), str(out8): str(out_dir)}
        return [swap.get(a, a) for a in refit8]

    refit8b = refit_with(forced_path, out8b)
    assert main(["finalize", *refit8b]) == 0
    card8b = json.loads((out8b / "card.json").read_text())
    assert card8b["postprocessing"]["class_bias"] == bias and "class bias" in card8b["training"]["calibration"]
    assert (card8b["postprocessing"]["mask_threshold"], card8b["postprocessing"]["mask_keep"]) == (0.4, "largest")
    image = np.asarray(np.random.default_rng(5).integers(0, 255, (48, 40)), np.uint8)
    plain = np.array(list(Predictor(out8).predict(image).probabilities.values()))
    shifted = np.array(list(Predictor(out8b).predict(image).probabilities.values()))
    ratio = np.exp(np.array(bias) - np.array(rep["class_bias"]))  # softmax(z/T + b) against softmax(z/T + b_rep)
    assert np.allclose(shifted, plain * ratio / (plain * ratio).sum(), atol=1e-5)
    with pytest.raises(SystemExit):  # only finalize --refit takes a report
        main(["fit", *argv8, "--calibration-from", str(report_path)])

    # A report with the zoomed third view: finalize builds that graph and the card names the views.
    capsys.readouterr()
    assert main(["cv-report", *argv6, "--ensemble-work-dir", str(work7), "--zoom-in"]) == 0
    repz = json.loads(capsys.readouterr().out)
    assert repz["test_time_views"] == ["image", "mirror", "zoom_in"] and repz["n_images"] == 20
    zoom_path, out8z = tmp_path / "cv-zoom.json", tmp_path / "bundle8z"
    zoom_path.write_text(json.dumps(repz))
    refit8z = refit_with(zoom_path, out8z)
    assert main(["finalize", *refit8z]) == 0
    card8z = json.loads((out8z / "card.json").read_text())
    assert card8z["architecture"]["test_time_views"] == repz["test_time_views"]
    assert "enlarged" in card8z["architecture"]["inference"] and card8["architecture"]["test_time_views"] == rep["test_time_views"]
    import keras

    assert keras.saving.load_model(out8z / "busnet.keras").get_layer("zoom_in") is not None
    assert Predictor(out8z).predict(image).mask.shape == image.shape
    zoom_path.write_text(json.dumps({**repz, "test_time_views": ["image", "rotated"]}))
    assert main(["finalize", *refit8z]) == 2
    with pytest.raises(SystemExit):  # the views come from the report, not from finalize's options
        main(["finalize", *refit8, "--zoom-in"])

    # An ensemble per fold (a second recipe): every fold needs the same number of runs, and
    # their outputs are averaged before the figures.
    work9 = tmp_path / "work9"
    argv9 = ["--data", str(data_root), "--work-dir", str(work9), *argv[6:], "--seed", "3"]
    assert main(["fit", *argv9, "--folds", "2", "--fold", "0"]) == 0
    ensemble = [*argv6, "--ensemble-work-dir", str(work7), "--ensemble-work-dir", str(work9)]
    assert main(["cv-report", *ensemble]) == 2
    work10 = tmp_path / "work10"
    assert main(["fit", *[a if a != str(work9) else str(work10) for a in argv9], "--folds", "2", "--fold", "1"]) == 0
    capsys.readouterr()
    assert main(["cv-report", *ensemble, "--ensemble-work-dir", str(work10)]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["n_images"] == 20 and len(rep2["recipes"]) == 2 and len(rep2["runs"]) == 4
