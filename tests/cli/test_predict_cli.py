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
    run = subprocess.run(
        [sys.executable, "-m", "busapp.cli.main", "predict", "--mask-dir", str(masks), *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )
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
