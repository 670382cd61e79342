"""busapp-cli predict: the command-line contract other tools rely on."""

import json
import subprocess
import sys

import numpy as np
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
