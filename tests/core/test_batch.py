"""Batch analysis over 100+ real images: completes, cancels half-way, resumes, matches ``busapp-cli predict``."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busapp.core.audit import AuditLog
from busapp.core.batch import CSV_NAME, BatchProgress, csv_columns, mask_names, mask_of, run_batch
from busapp.core.measure import CalibrationStore, measure_mask

N_IMAGES = 104


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def image_folder(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """104 real images in nested folders, a same-stem JPEG, a damaged PNG and a text file."""
    folder = tmp_path_factory.mktemp("batch") / "in"
    sources = sorted((data_root / "breast_lesions_usg").glob("*/case*[0-9].png"))[:60]
    sources += sorted((data_root / "busi").glob("*/*).png"))[: N_IMAGES - 60 - 2]
    assert len(sources) == N_IMAGES - 2
    for i, src in enumerate(sources):
        dst = folder / ("a" if i % 3 else "b/deeper") / f"img{i:03d}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    Image.open(sources[0]).convert("RGB").save(folder / "b" / "deeper" / "img000.jpg", quality=95)  # same stem as a.png
    (folder / "broken.png").write_bytes(Path(sources[1]).read_bytes()[:300])  # truncated PNG
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def predictor():
    from busapp.core.predictor import Predictor

    return Predictor()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_mask_names_are_unique() -> None:
    names = mask_names(["a/x.png", "a/x.jpg", "a/y.png", "b/x.png"])
    assert names == {
        "a/x.png": "masks/a/x_png_mask.png",
        "a/x.jpg": "masks/a/x_jpg_mask.png",
        "a/y.png": "masks/a/y_mask.png",
        "b/x.png": "masks/b/x_mask.png",
    }


def test_batch_cancel_resume_and_match_predict(
    image_folder: Path, predictor, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(image_folder)
    out = tmp_path / "out"
    audit = AuditLog(tmp_path / "audit.jsonl")
    cancel = threading.Event()
    seen: list[BatchProgress] = []

    def on_progress(p: BatchProgress) -> None:
        seen.append(p)
        if p.done >= p.total // 2:
            cancel.set()

    first = run_batch(image_folder, out, predictor, progress=on_progress, cancel=cancel, audit=audit)
    total = N_IMAGES  # 102 PNGs + 1 JPEG + broken.png (looks like a PNG, fails to decode); not notes.txt
    assert first.total == total
    assert [n for n, _ in first.not_images] == ["notes.txt"]
    assert first.cancelled and "Cancelled" in first.summary() and "resume" in first.summary()
    assert total // 2 <= first.done < total
    rows = read_csv(out / CSV_NAME)
    assert len(rows) == first.done  # exactly what was done is kept
    assert list(rows[0]) == csv_columns(predictor.bundle.classes)
    for r in rows:
        if r["file"] != "broken.png":
            assert not r["error"] and (out / r["mask"]).exists(), r
    # Progress is monotone with an ETA once timed.
    assert [p.done for p in seen] == list(range(1, len(seen) + 1))
    assert all(p.eta_s is None or p.eta_s >= 0 for p in seen) and seen[-1].eta_s is not None

    second = run_batch(image_folder, out, predictor, audit=audit)
    assert not second.cancelled and second.total == total
    ok_first = sum(1 for r in rows if not r["error"])
    assert second.skipped == ok_first  # rows from the first run are reused, not recomputed
    assert second.analysed == total - ok_first
    assert second.failed == 1
    rows = read_csv(out / CSV_NAME)
    assert [r["file"] for r in rows] == sorted(r["file"] for r in rows) and len(rows) == total
    broken = next(r for r in rows if r["file"] == "broken.png")
    assert broken["error"] and not broken["label"] and not broken["mask"]
    assert {r["mask"] for r in rows if r["file"].startswith("b/deeper/img000.")} == {
        "masks/b/deeper/img000_png_mask.png",
        "masks/b/deeper/img000_jpg_mask.png",
    }
    # Inputs are never touched; no temporary files are left behind.
    assert snapshot(image_folder) == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    # Audit: one record per analysed image + one per batch, identified by sha256 only.
    log = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in log.splitlines()]
    assert sum(e["action"] == "analysis" for e in entries) == first.analysed - first.failed + second.analysed - second.failed
    assert [e["details"]["cancelled"] for e in entries if e["action"] == "batch"] == [True, False]
    assert ".png" not in log and str(image_folder) not in log and "img0" not in log

    # The CSV agrees with busapp-cli predict on the same files.
    from busapp.cli.main import main

    good = [r for r in rows if not r["error"]]
    pred_dir = tmp_path / "predict_masks"
    capsys.readouterr()
    main(["predict", "--mask-dir", str(pred_dir), *[str(image_folder / r["file"]) for r in good]])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(good)
    for r, rec in zip(good, records, strict=True):
        assert Path(rec["file"]) == image_folder / r["file"]
        assert r["label"] == rec["label"]
        for c, p in rec["probabilities"].items():
            assert float(r[f"p_{c}"]) == pytest.approx(p, abs=2e-6)
        assert r["low_confidence"] == str(rec["low_confidence"]).lower()
        assert (r["model_name"], r["model_version"]) == (rec["model"]["name"], rec["model"]["version"])
        ours = mask_of(out, r)
        theirs = np.asarray(Image.open(rec["mask"])) > 127
        assert np.array_equal(ours, theirs), r["file"]
        assert (r["area"] == "") == (not ours.any())
        if ours.any():
            assert r["unit"] == "px" and r["area_unit"] == "px²"
            m = measure_mask(ours, None)  # the CSV's numbers are those of the saved mask
            assert float(r["area"]) == pytest.approx(m.area, rel=1e-5)
            assert float(r["longest_diameter"]) == pytest.approx(m.longest_diameter, rel=1e-5)
            assert float(r["depth_to_width"]) == pytest.approx(m.depth_to_width, rel=1e-5)
        assert r["sha256"] == hashlib.sha256((image_folder / r["file"]).read_bytes()).hexdigest()


def test_resume_redoes_changed_files_and_model_versions(image_folder: Path, predictor, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    files = sorted(image_folder.glob("a/img00*.png"))[:6]
    folder.mkdir()
    for f in files:
        shutil.copyfile(f, folder / f.name)
    out = tmp_path / "out"
    assert run_batch(folder, out, predictor).analysed == 6
    rows = read_csv(out / CSV_NAME)
    rows[0]["model_version"] = "0.0.1-old"  # as if analysed by an older model
    with open(out / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    shutil.copyfile(files[5], folder / files[1].name)  # content changed: new sha256
    (out / rows[2]["mask"]).unlink()  # mask lost
    again = run_batch(folder, out, predictor)
    assert (again.analysed, again.skipped) == (3, 3)
    assert run_batch(folder, out, predictor, resume=False).analysed == 6


def test_output_inside_input_folder_is_not_scanned_and_calibration_is_used(
    image_folder: Path, predictor, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    src = next(image_folder.glob("a/img001.png"))
    shutil.copyfile(src, folder / "x.png")
    store = CalibrationStore(tmp_path / "cal.json")
    store.set(hashlib.sha256(src.read_bytes()).hexdigest(), (0.1, 0.1))
    res = run_batch(folder, folder / "results", predictor, calibrations=store)
    assert res.total == 1
    res = run_batch(folder, folder / "results", predictor, calibrations=store)
    assert res.total == 1 and res.skipped == 1  # its own masks were not picked up as inputs
    row = read_csv(folder / "results" / CSV_NAME)[0]
    if row["area"]:
        assert (row["unit"], row["area_unit"], row["spacing_source"]) == ("mm", "mm²", "user calibrated")
