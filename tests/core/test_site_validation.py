"""Site validation: statistics, labels checks, the verdict, and ``busapp-cli validate`` end to end
on a labelled folder from the shared data sets with a known answer."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from busapp.core.site_validation import (
    LabelsError,
    auc,
    card_reference,
    n_for_half_width,
    read_labels,
    verdict,
    wilson,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def test_wilson_and_sample_size() -> None:
    lo, hi = wilson(45, 50)
    assert lo < 0.9 < hi and 0.78 < lo < 0.8 and 0.95 < hi < 0.97  # Wilson's published 45/50 interval
    n = n_for_half_width(0.9)
    lo, hi = wilson(round(0.9 * n), n)
    assert (hi - lo) / 2 <= 0.10
    lo, hi = wilson(round(0.9 * (n - 1)), n - 1)
    assert (hi - lo) / 2 > 0.10


def test_auc_ranks_and_ties() -> None:
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5


def _labels(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "labels.csv"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "says"), [
    ("name,diagnosis\na.png,benign\n", "header"),
    ("file,label\na.png,cancer\n", "line 2"),
    ("file,label\n../a.png,benign\n", "inside the image folder"),
    ("file,label\na.png,benign\na.png,benign\n", "twice"),
    ("file,label\n", "no labelled images"),
])
def test_bad_labels_files_are_refused_with_the_line(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(LabelsError, match=says):
        read_labels(tmp_path, _labels(tmp_path, text))


def test_verdict_refuses_small_samples_and_compares_with_the_card() -> None:
    ref = {"sensitivity": {"value": 0.92, "ci95": (0.85, 0.96), "site": "bus_uclm"},
           "specificity": {"value": 0.57, "ci95": (0.49, 0.64), "site": "bus_uclm"}}

    def fig(n_m: int, n_b: int, sens: float, spec: float) -> dict:
        return {"n_malignant": n_m, "n_benign": n_b, "sensitivity": {"value": sens}, "specificity": {"value": spec}}

    small = verdict(fig(10, 12, 0.9, 0.6), ref)
    assert small["status"] == "insufficient" and "10 cancers" in small["text"] and "12 benign" in small["text"]
    assert str(small["needed"]["malignant"]) in small["text"]
    assert verdict(fig(200, 200, 0.8, 0.6), ref)["status"] == "below"
    assert "do not rely on busapp" in verdict(fig(200, 200, 0.8, 0.6), ref)["text"]
    assert verdict(fig(200, 200, 0.93, 0.6), ref)["status"] == "consistent"


def test_card_reference_is_the_worst_held_out_site(tmp_path: Path) -> None:
    from risk_cards import bundle_with_decision

    from busapp.core.model_bundle import load_bundle

    ref = card_reference(load_bundle(bundle_with_decision(tmp_path)).card)
    assert ref["sensitivity"]["site"] == "bus_uclm" and ref["sensitivity"]["value"] == 0.92
    assert ref["specificity"]["site"] == "bus_uclm"


# --- the CLI, end to end ------------------------------------------------------------------------------


def _run_cli(*args: str, env_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BUSAPP_DATA_DIR": str(env_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "busapp.cli.main", "validate", *args, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def labelled(data_root: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Eight BUSI test-split images, read in place (the folder is the data set itself)."""
    from busapp.training.data import read_split

    split = read_split()
    rows = []
    with open(data_root / "busi" / "manifest.csv", newline="") as f:
        for r in csv.DictReader(f):
            if split.get(f"busi/{r['id']}") == "test":
                rows.append((r["image"], r["label"], r["masks"].split(";")[0] if r["masks"] else ""))
    pick = [r for r in rows if r[1] == "malignant"][:4] + [r for r in rows if r[1] == "benign"][:3] + \
        [r for r in rows if r[1] == "normal"][:1]
    return data_root / "busi", pick


def test_validate_cli_known_answers(tmp_path: Path, labelled) -> None:
    folder, pick = labelled
    truth = _labels(tmp_path, "file,label,mask\n" + "".join(f"{f},{lab},{m}\n" for f, lab, m in pick))
    r = _run_cli(str(folder), "--labels", str(truth), "--out", str(tmp_path / "out"), env_dir=tmp_path / "data")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    rep = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert rep["n_malignant"] == 4 and rep["n_benign"] == 3 and rep["n_normal"] == 1
    assert rep["verdict"]["status"] == "insufficient"  # 8 images cannot carry a verdict
    assert {"sensitivity", "specificity", "auc"} <= set(rep)
    assert rep["dice"]["n"] == 7 and 0 < rep["dice"]["mean"] <= 1
    rows = list(csv.DictReader(open(summary["outputs"]["csv"], encoding="utf-8")))
    assert "file" not in rows[0] and all(len(x["sha256"]) == 64 for x in rows)
    text = Path(summary["outputs"]["csv"]).read_text() + Path(summary["outputs"]["json"]).read_text()
    assert not any(Path(f).stem in text for f, _, _ in pick)  # named by sha256 only

    # Known answers: label each image as the shipped rule calls it, then the opposite.
    by_sha = {x["sha256"]: x["rule_positive"] == "yes" for x in rows}
    from busapp.core.hashing import sha256_file

    called = [by_sha[sha256_file(folder / f)] for f, _, _ in pick]
    assert any(called) and not all(called), "the sample needs images on both sides of the rule"
    right = _labels(tmp_path, "file,label\n" + "".join(
        f"{f},{'malignant' if c else 'benign'}\n" for (f, _, _), c in zip(pick, called, strict=True)))
    r = _run_cli(str(folder), "--labels", str(right), "--out", str(tmp_path / "right"), env_dir=tmp_path / "data")
    rep = json.loads(Path(json.loads(r.stdout)["outputs"]["json"]).read_text())
    assert (rep["sensitivity"]["value"], rep["specificity"]["value"]) == (1.0, 1.0)
    (tmp_path / "wrong.csv").write_text("file,label\n" + "".join(
        f"{f},{'benign' if c else 'malignant'}\n" for (f, _, _), c in zip(pick, called, strict=True)))
    r = _run_cli(str(folder), "--labels", str(tmp_path / "wrong.csv"), "--out", str(tmp_path / "wrong"),
                 env_dir=tmp_path / "data")
    rep = json.loads(Path(json.loads(r.stdout)["outputs"]["json"]).read_text())
    assert (rep["sensitivity"]["value"], rep["specificity"]["value"]) == (0.0, 0.0)
    assert rep["auc"]["value"] is not None

    # The PDF says the same; page 1 is looked at as a PNG.
    pypdf = pytest.importorskip("pypdf")
    pdf = Path(summary["outputs"]["pdf"])
    pdf_text = " ".join(pg.extract_text() for pg in pypdf.PdfReader(str(pdf)).pages)
    pdf_text = " ".join(pdf_text.split())
    assert "Not enough images for a verdict" in pdf_text and "4 cancers and 3 benign lesions" in pdf_text
    assert "Sensitivity" in pdf_text and "ROC" in pdf_text and "Confusion matrix" in pdf_text
    assert f"{summary['sensitivity']:.2f}" in pdf_text
    if shutil.which("pdftoppm"):
        ARTIFACTS.mkdir(exist_ok=True)
        for page in (1, 2):
            subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                            str(ARTIFACTS / f"validation_page{page}")], check=True)
        assert (ARTIFACTS / "validation_page1.png").stat().st_size > 5000


def test_validate_cli_refuses_a_bad_labels_file(tmp_path: Path) -> None:
    bad = _labels(tmp_path, "file,label\nx.png,maybe\n")
    r = _run_cli(str(tmp_path), "--labels", str(bad), "--out", str(tmp_path / "out"), env_dir=tmp_path / "data")
    assert r.returncode == 2 and "line 2" in r.stderr and "maybe" in r.stderr
    assert not (tmp_path / "out").exists()


def test_validate_does_not_import_qt(tmp_path: Path) -> None:
    code = ("import sys, busapp.cli.main, busapp.cli.validate, busapp.core.site_validation, "
            "busapp.report.validation_pdf; sys.exit(any(m.startswith('PySide6') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}).returncode == 0


def test_validation_uses_the_cards_threshold_and_compares_with_its_sites(tmp_path: Path, labelled) -> None:
    from risk_cards import DECISION, bundle_with_decision

    from busapp.core.analysis import Analyzer
    from busapp.core.predictor import Predictor
    from busapp.core.site_validation import run_validation

    folder, pick = labelled
    labels = _labels(tmp_path, "file,label\n" + "".join(f"{f},{lab}\n" for f, lab, _ in pick))
    analyzer = Analyzer(Predictor(bundle_with_decision(tmp_path)))
    run = run_validation(folder, labels, analyzer)
    t = DECISION["suspicious_threshold"]
    assert run.figures["threshold"] == t and f"{t:.2f}" in run.figures["rule"]
    for o in run.outcomes:
        assert o.positive == (o.p_malignant >= t)  # the card's rule, not the top class
    assert run.figures["reference"]["sensitivity"] == {"value": 0.92, "ci95": (0.85, 0.96), "site": "bus_uclm"}
    assert run.figures["verdict"]["status"] == "insufficient"


def test_an_unreadable_image_is_a_row_with_its_reason_not_the_end(tmp_path: Path, labelled) -> None:
    from busapp.core.analysis import Analyzer
    from busapp.core.predictor import Predictor
    from busapp.core.site_validation import outcome_rows, run_validation

    folder, pick = labelled
    labels = _labels(tmp_path, "file,label\nmalignant/not-there (999).png,malignant\n" +
                     "".join(f"{f},{lab}\n" for f, lab, _ in pick[:2]))
    run = run_validation(folder, labels, Analyzer(Predictor()))
    assert run.figures["n_failed"] == 1 and run.figures["n_analysed"] == 2
    row = outcome_rows(run)[0]
    assert row["error"] and "not-there" not in row["error"]  # the reason, without the file's name
    assert "not-there" in outcome_rows(run, names=True)[0]["file"]
