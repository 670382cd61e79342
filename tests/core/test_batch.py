"""Batch analysis over 100+ real images: completes, cancels half-way, resumes, matches ``busapp-cli predict``."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busapp.core.audit import AuditLog
from busapp.core.batch import (
    CSV_NAME,
    BatchProgress,
    csv_columns,
    mask_names,
    mask_of,
    run_batch,
    throttled,
)
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


def test_csv_columns_are_distinct() -> None:
    cols = csv_columns(("normal", "benign", "malignant"))
    assert len(cols) == len(set(cols)) and {"p_malignant", "suspicious", "threshold", "input_warnings"} <= set(cols)


def test_mask_names_are_unique() -> None:
    names = mask_names(["a/x.png", "a/x.jpg", "a/y.png", "b/x.png", "a/x_png.png", "a/X.PNG", "a/X.PNG.mask"])
    assert names["a/x.jpg"] == "masks/a/x.jpg.mask.png" and names["b/x.png"] == "masks/b/x.png.mask.png"
    assert {names["a/x.png"], names["a/X.PNG"]} == {"masks/a/X.PNG.mask.png", "masks/a/x.png-2.mask.png"}
    assert names["a/x_png.png"] == "masks/a/x_png.png.mask.png"
    assert len({n.casefold() for n in names.values()}) == len(names)  # even on a case-insensitive disk


def test_batch_cancel_resume_and_match_predict(
    image_folder: Path, predictor, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSAPP_DATA_DIR", str(tmp_path / "data"))  # predict's audit records go here
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
        "masks/b/deeper/img000.png.mask.png",
        "masks/b/deeper/img000.jpg.mask.png",
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


def test_stored_calibration_is_used(
    image_folder: Path, predictor, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    src = next(image_folder.glob("a/img001.png"))
    shutil.copyfile(src, folder / "x.png")
    store = CalibrationStore(tmp_path / "cal.json")
    store.set(hashlib.sha256(src.read_bytes()).hexdigest(), (0.1, 0.1))
    res = run_batch(folder, tmp_path / "results", predictor, calibrations=store)
    assert res.total == 1
    row = read_csv(tmp_path / "results" / CSV_NAME)[0]
    if row["area"]:
        assert (row["unit"], row["area_unit"], row["spacing_source"]) == ("mm", "mm²", "user calibrated")


# --- issue 28: the writer's promises (a fake predictor: these are about files, not the model) -------------


class FakePredictor:
    """Outlines a box whose width depends on the image's mean, so each image's mask is its own."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from risk_cards import fake_card

        card = fake_card(sha256="cd" * 32)
        self.bundle = SimpleNamespace(name="fake", version="0.1", card=card, classes=card.classes)

    def predict(self, image: np.ndarray):
        from busapp.core.predictor import Prediction

        mask = np.zeros(image.shape[:2], bool)
        mask[5:15, 5 : 6 + int(np.asarray(image).mean()) % 20] = True
        return Prediction("benign", {"normal": 0.2, "benign": 0.5, "malignant": 0.3}, mask, "fake", "0.1", False)


def grey_png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 50), value, np.uint8)).save(path)
    return path


def test_non_utf8_name_is_kept_losslessly_and_never_fails_the_batch(tmp_path: Path) -> None:
    """Issue 28 item 3."""
    from urllib.parse import unquote_to_bytes

    folder = tmp_path / "in"
    folder.mkdir()
    raw = b"M\xfcller.png"
    grey_png(Path(os.fsdecode(os.path.join(os.fsencode(folder), raw))), 30)
    grey_png(folder / "plain.png", 60)
    res = run_batch(folder, tmp_path / "out", FakePredictor())
    assert (res.analysed, res.failed) == (2, 0)
    rows = read_csv(tmp_path / "out" / CSV_NAME)  # valid UTF-8
    assert sorted(unquote_to_bytes(r["file_raw"]) for r in rows) == [raw, b"plain.png"]
    odd = next(r for r in rows if unquote_to_bytes(r["file_raw"]) == raw)
    assert not odd["error"] and (tmp_path / "out" / odd["mask"]).is_file()
    assert "\ufffd" not in odd["file"] and "M" in odd["file"]  # readable, no lost byte


def test_mask_names_unique_by_construction(tmp_path: Path) -> None:
    """Issue 28 item 4: x.png, x.jpg and x_png.png each get their own mask."""
    folder = tmp_path / "in"
    grey_png(folder / "x.png", 10)
    Image.fromarray(np.full((40, 50), 120, np.uint8)).save(folder / "x.jpg", quality=100)
    grey_png(folder / "x_png.png", 200)
    grey_png(folder / "X.PNG", 77)
    out = tmp_path / "out"
    res = run_batch(folder, out, FakePredictor())
    assert res.analysed == 4
    rows = read_csv(out / CSV_NAME)
    assert len({r["mask"].lower() for r in rows}) == 4  # distinct even on a case-insensitive disk
    fake = FakePredictor()
    for r in rows:
        expected = fake.predict(np.asarray(Image.open(folder / r["file"]))).mask
        assert np.array_equal(mask_of(out, r), expected), r["file"]


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_overlapping_output_folder_is_refused(tmp_path: Path, where: str) -> None:
    """Issue 28 item 6: nothing analysed, nothing written, a clear reason."""
    from busapp.core.output_paths import OutputRefused

    images = tmp_path / "d6" / "images"
    grey_png(images / "a.png", 50)
    (tmp_path / "d6" / "results.csv").write_text("patient,notes\n1,mine\n")
    before = snapshot(tmp_path / "d6")
    out = {"same": images, "parent": tmp_path / "d6", "inside": images / "results"}[where]
    with pytest.raises(OutputRefused, match="overlap"):
        run_batch(images, out, FakePredictor())
    assert snapshot(tmp_path / "d6") == before


def test_results_csv_busapp_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    """Issue 28 item 6: a user's own results.csv in the output folder stays as it is."""
    from busapp.core.output_paths import OutputRefused

    grey_png(tmp_path / "in" / "a.png", 50)
    out = tmp_path / "out"
    out.mkdir()
    (out / CSV_NAME).write_text("patient,notes\n1,mine\n")
    with pytest.raises(OutputRefused, match="busapp did not write"):
        run_batch(tmp_path / "in", out, FakePredictor())
    assert (out / CSV_NAME).read_text() == "patient,notes\n1,mine\n"
    # busapp's own results.csv is resumed and rewritten as before.
    out2 = tmp_path / "out2"
    assert run_batch(tmp_path / "in", out2, FakePredictor()).analysed == 1
    assert run_batch(tmp_path / "in", out2, FakePredictor()).skipped == 1


def test_foreign_file_at_a_mask_name_is_kept(tmp_path: Path) -> None:
    """Issue 28 item 1 for batch: a file busapp did not write is never replaced by a mask."""
    grey_png(tmp_path / "in" / "a.png", 50)
    out = tmp_path / "out"
    assert run_batch(tmp_path / "in", out, FakePredictor()).analysed == 1
    row = read_csv(out / CSV_NAME)[0]
    mine = out / row["mask"]
    mine.write_bytes(b"my own notes")  # the user puts a file of their own at that name
    (out / CSV_NAME).unlink()
    run_batch(tmp_path / "in", out, FakePredictor())
    assert mine.read_bytes() == b"my own notes"
    new = read_csv(out / CSV_NAME)[0]
    assert new["mask"] != row["mask"] and (out / new["mask"]).is_file() and not new["error"]


def test_formula_names_are_neutralised_and_recoverable(tmp_path: Path) -> None:
    """Issue 28 item 11 (OWASP CSV injection): no cell starts with = + - @ tab or CR."""
    from urllib.parse import unquote

    names = ["=HYPERLINK(1).png", "+1.png", "-2.png", "@SUM(1).png", "ok.png"]
    for i, n in enumerate(names):
        grey_png(tmp_path / "in" / n, 20 + i)
    (tmp_path / "in" / "=broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    run_batch(tmp_path / "in", tmp_path / "out", FakePredictor())
    rows = read_csv(tmp_path / "out" / CSV_NAME)
    assert sorted(unquote(r["file_raw"]) for r in rows) == sorted([*names, "=broken.png"])
    for r in rows:
        for col, cell in r.items():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (col, cell)
        if unquote(r["file_raw"]) != "ok.png":
            assert r["file"] == "'" + unquote(r["file_raw"])  # the documented escape
    assert next(r for r in rows if r["file_raw"] == "ok.png")["file"] == "ok.png"


def test_long_names_one_row_one_outcome(tmp_path: Path) -> None:
    """Issue 28 item 9: 242-255 byte names are analysed; no temp or mask name overflows NAME_MAX."""
    for n in (242, 250, 255):
        grey_png(tmp_path / "in" / ("a" * (n - 4) + ".png"), n % 200)
    res = run_batch(tmp_path / "in", tmp_path / "out", FakePredictor())
    assert (res.analysed, res.failed) == (3, 0)
    for r in read_csv(tmp_path / "out" / CSV_NAME):
        assert not r["error"] and r["label"] and (tmp_path / "out" / r["mask"]).is_file()
        assert len(os.fsencode(Path(r["mask"]).name)) <= 255


def test_unreadable_file_error_has_no_errno_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 28 item 12: raw "[Errno N] ..." never reaches the user."""
    import errno

    import busapp.core.batch as batch

    grey_png(tmp_path / "in" / "a.png", 50)

    def fail(path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(batch, "sha256_file", fail)
    run_batch(tmp_path / "in", tmp_path / "out", FakePredictor())
    (row,) = read_csv(tmp_path / "out" / CSV_NAME)
    assert row["error"] and "Errno" not in row["error"] and "Input/output error" not in row["error"]
    assert "input/output error" in row["error"]


def test_two_lanes_give_the_rows_of_one_in_file_order(image_folder: Path, predictor, tmp_path: Path) -> None:
    """Lanes analyse images side by side; the CSV, the masks and the progress must not show it."""
    from busapp.core.batch import lane_predictors

    folder = tmp_path / "in"
    for src in sorted((image_folder / "a").glob("*.png"))[:14]:
        (folder / "x").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / "x" / src.name)
    (folder / "broken.png").write_bytes((image_folder / "broken.png").read_bytes())
    lanes = lane_predictors(lanes=2)
    assert lanes[0]._interpreter is not lanes[1]._interpreter
    seen: list[str] = []
    one = run_batch(folder, tmp_path / "one", predictor)
    two = run_batch(folder, tmp_path / "two", lanes, progress=lambda p: seen.append(p.current))
    assert two.analysed == one.analysed == 15 and two.failed == one.failed == 1
    assert seen == [r["file"] for r in read_csv(tmp_path / "one" / CSV_NAME)]  # file order, one by one
    rows_one, rows_two = read_csv(tmp_path / "one" / CSV_NAME), read_csv(tmp_path / "two" / CSV_NAME)
    assert [r["file"] for r in rows_two] == [r["file"] for r in rows_one]
    for a, b in zip(rows_one, rows_two, strict=True):
        assert a["label"] == b["label"] and a["mask"] == b["mask"]
        # one LiteRT thread against two: the same graph, sums in another order at most
        for k in ("p_normal", "p_benign", "p_malignant"):
            assert a[k] == b[k] == "" or abs(float(a[k]) - float(b[k])) < 1e-4
        if a["mask"]:
            assert (mask_of(tmp_path / "one", a) == mask_of(tmp_path / "two", b)).mean() > 0.999


def test_throttled_progress_keeps_the_first_the_last_and_one_per_interval() -> None:
    now = [0.0]
    seen: list[int] = []
    report = throttled(lambda p: seen.append(p.done), every_s=0.1, clock=lambda: now[0])
    for done in range(1, 11):  # ten images 30 ms apart: 0.00 .. 0.27 s
        report(BatchProgress(done, 10, None))
        now[0] += 0.03
    assert seen == [1, 5, 9, 10]
