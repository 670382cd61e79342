"""busapp-cli predict: the command-line contract other tools rely on."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_predict_json_lines_masks_and_errors(sample_images, tmp_path):
    bad_text = tmp_path / "notes.txt"
    bad_text.write_text("not an image")
    truncated = tmp_path / "broken.png"
    truncated.write_bytes(sample_images[0].read_bytes()[:2000])
    files = [*sample_images[:2], bad_text, truncated]
    before = [f.read_bytes() for f in files]
    masks = tmp_path / "masks"
    run = _predict(["--mask-dir", str(masks), *map(str, files)], tmp_path / "data")
    assert run.returncode != 0  # two files failed
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line, src in zip(lines[:2], sample_images[:2], strict=True):
        assert line["label"] in ("normal", "benign", "malignant")
        assert set(line["probabilities"]) == {"normal", "benign", "malignant"}
        assert abs(sum(line["probabilities"].values()) - 1) < 1e-4
        assert line["label"] == max(line["probabilities"], key=line["probabilities"].get)
        assert line["model"]["name"] == "busnet" and line["model"]["version"]
        with Image.open(line["mask"]) as m, Image.open(src) as s:
            assert m.size == s.size and m.mode == "L"
            assert set(np.unique(np.asarray(m))) <= {0, 255}
    assert "not an image" in lines[2]["error"]
    assert "damaged" in lines[3]["error"]
    assert [f.read_bytes() for f in files] == before  # inputs untouched
    for line in lines[:2]:  # the keys taken from the AnalysisResult
        assert isinstance(line["input_warnings"], list)
        assert line["suspicious"] in (True, False, None) and "threshold" in line and "risk" in line
        assert len(line["model"]["sha256"]) == 64
    for line in lines[2:]:  # one line, one outcome
        assert "label" not in line and "mask" not in line


def _predict(args: list[str], data_dir) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "BUSAPP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "busapp.cli.main", "predict", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_predict_writes_one_audit_record_per_analysis(sample_images, tmp_path):
    """Issue 28 item 7 / issue 26: every analysis is audited, the CLI's too, with the model's sha256."""
    import hashlib

    from busapp.core.audit import AuditLog
    from busapp.core.model_bundle import load_bundle

    data = tmp_path / "data"
    run = _predict([str(p) for p in sample_images[:2]], data)
    assert run.returncode == 0, run.stderr
    records = [e for e in AuditLog(data / "audit.jsonl").entries() if e["action"] == "analysis"]
    assert [r["sha256"] for r in records] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in sample_images[:2]]
    bundle = load_bundle()
    for r, line in zip(records, run.stdout.splitlines(), strict=True):
        assert r["source"] == "cli"
        assert r["model"]["sha256"] == bundle.card["files"]["tflite"]["sha256"]
        assert r["outputs"]["label"] == json.loads(line)["label"]
    text = (data / "audit.jsonl").read_text(encoding="utf-8")
    assert sample_images[0].name not in text  # sha256 only, never the file name


def test_predict_never_replaces_an_input_or_a_file_busapp_did_not_write(sample_images, tmp_path):
    """Issue 28 item 1: `predict --mask-dir d1 d1/x.png d1/scan.jpg` with an unrelated d1/scan.png."""
    d1 = tmp_path / "d1"
    d1.mkdir()
    x = d1 / "x.png"
    x.write_bytes(sample_images[0].read_bytes())
    Image.open(sample_images[1]).convert("RGB").save(d1 / "scan.jpg", quality=95)
    (d1 / "scan.png").write_bytes(sample_images[2].read_bytes())  # the user's own, unrelated
    before = {p.name: p.read_bytes() for p in d1.iterdir()}
    run = _predict(["--mask-dir", str(d1), str(x), str(d1 / "scan.jpg")], tmp_path / "data")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert {p.name: p.read_bytes() for p in d1.iterdir() if p.name in before} == before  # all untouched
    masks = [Path(line["mask"]) for line in lines]
    assert len(set(masks)) == 2 and not {m.name for m in masks} & set(before)
    for line in lines:
        assert "busapp wrote" in line["mask_note"] and "error" not in line
        with Image.open(line["mask"]) as m:
            assert set(np.unique(np.asarray(m))) <= {0, 255}
    # Run again: busapp's own masks are replaced in place, not piled up; the inputs still stand.
    again = [json.loads(line) for line in _predict(["--mask-dir", str(d1), str(x), str(d1 / "scan.jpg")],
                                                   tmp_path / "data").stdout.splitlines()]
    assert [a["mask"] for a in again] == [line["mask"] for line in lines]
    assert {p.name: p.read_bytes() for p in d1.iterdir() if p.name in before} == before


def test_predict_long_name_one_line_one_outcome(sample_images, tmp_path):
    """Issue 28 item 9: a 255-byte name is analysed and its mask written; never a result plus an error."""
    src = tmp_path / ("a" * 251 + ".png")
    src.write_bytes(sample_images[0].read_bytes())
    run = _predict(["--mask-dir", str(tmp_path / "m"), str(src)], tmp_path / "data")
    (line,) = [json.loads(x) for x in run.stdout.splitlines()]
    assert run.returncode == 0 and "error" not in line, line
    assert Path(line["mask"]).is_file() and len(Path(line["mask"]).name.encode()) <= 255


def test_predict_write_error_is_one_sentence_without_errno(sample_images, tmp_path, monkeypatch, capsys):
    """Issue 28 items 9 and 12: a failed mask write is the line's one outcome, said in words."""
    import errno

    import busapp.core.atomic as atomic
    from busapp.cli.main import main

    monkeypatch.setenv("BUSAPP_DATA_DIR", str(tmp_path / "data"))

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    assert main(["predict", "--mask-dir", str(tmp_path / "m"), str(sample_images[0])]) == 1
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert set(line) == {"file", "error"}
    assert "disk is full" in line["error"] and "Errno" not in line["error"] and "No space" not in line["error"]


def test_predict_and_batch_carry_the_risk_assessment(sample_images, tmp_path):
    """suspicious/threshold/risk/input_warnings come from the one analysis path, in predict and batch alike."""
    import csv
    import shutil

    from risk_cards import DECISION, bundle_with_decision

    from busapp.core.model_bundle import load_bundle

    # The shipped card: suspicious and threshold are null exactly when it has no validated rule.
    line = json.loads(_predict([str(sample_images[0])], tmp_path / "data").stdout)
    validated = "decision" in load_bundle().card
    assert (line["suspicious"] is None) == (not validated) and line["risk"]["validated"] is validated
    # A card with a decision rule.
    model = bundle_with_decision(tmp_path)
    run = _predict(["--model", str(model), *map(str, sample_images[:3])], tmp_path / "data")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(x) for x in run.stdout.splitlines()]
    t = DECISION["suspicious_threshold"]
    for line in lines:
        p = line["probabilities"]["malignant"]
        assert line["threshold"] == t and line["suspicious"] is (p >= t)
        assert line["risk"]["validated"] is True and line["risk"]["p_malignant"] == pytest.approx(p, abs=1e-6)
        assert all(set(w) == {"code", "message"} for w in line["input_warnings"])
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sample_images[:3]:
        shutil.copyfile(f, folder / f.name)
    import os

    env = {**os.environ, "BUSAPP_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "-m", "busapp.cli.main", "batch", str(folder), "--out", str(tmp_path / "o"),
                          "--model", str(model), "--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "o" / "results.csv", newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    for line, src in zip(lines, sample_images[:3], strict=True):
        row = rows[src.name]
        assert row["suspicious"] == ("yes" if line["suspicious"] else "no")
        assert float(row["threshold"]) == pytest.approx(t) and row["threshold_validated"] == "yes"
        assert row["risk_band"] == line["risk"]["band"]
        assert row["input_warnings"] == ";".join(w["code"] for w in line["input_warnings"])
