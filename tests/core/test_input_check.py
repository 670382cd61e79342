"""The input check on real images: ultrasound passes, everything else is flagged, never blocked."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busapp.core import input_check as ic
from busapp.core.imageio import load_image


@pytest.fixture(scope="module")
def params() -> dict:
    return ic.load_params(None)


@pytest.fixture(scope="module")
def predictor():
    from busapp.core.predictor import Predictor

    return Predictor()


def test_shipped_params_were_fitted_on_data(params: dict) -> None:
    t = params["thresholds"]
    assert set(t) >= {"colour_at_least", "not_ultrasound_distance", "unlike_distance", "crop_box_at_least", "blank_std_below"}
    assert t["unlike_distance"] < t["not_ultrasound_distance"]
    assert set(params["separation"]["distance_leave_one_site_out"]) == {"busi", "breast_lesions_usg", "bus_uclm"}
    assert np.asarray(params["distance"]["inv_cov"]).shape == (len(ic.FEATURES),) * 2
    assert np.asarray(params["ultrasound"]["inv_cov"]).shape == (len(ic.FEATURES),) * 2
    assert "BUS-UCLM" not in params["fitted_on"]  # 1.5.0, which uses this file, never saw BUS-UCLM


def test_ultrasound_frames_pass(sample_images: list[Path], predictor, params: dict) -> None:
    for path in sample_images:
        img = load_image(path).frame(0)
        w = ic.check(img, predictor.predict(img), params=params)
        assert not [x for x in w if x.code in ("not_ultrasound", "blank", "colour")], (path.name, w)


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee", "chelsea", "text", "moon", "page", "coins",
                                  "brick", "gravel", "grass", "clock", "cell", "shepp_logan_phantom"])
def test_non_ultrasound_images_are_flagged(name: str, params: dict) -> None:
    pytest.importorskip("skimage")
    w = ic.check(_skimage(name), None, params=params)
    assert w and w[0].code in ("not_ultrasound", "unlike_training"), (name, w)


@pytest.mark.parametrize(("name", "image"), [
    ("black", np.zeros((400, 500), np.uint8)),
    ("grey", np.full((400, 500), 90, np.uint8)),
    ("white rgb", np.full((300, 300, 3), 255, np.uint8)),
])
def test_blank_frames(name: str, image: np.ndarray, params: dict) -> None:
    assert [w.code for w in ic.check(image, None, params=params)] == ["blank"]


def test_synthetic_frames_are_flagged(params: dict) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    for name, img in (("noise", rng.integers(0, 256, (480, 640), dtype=np.uint8)),
                      ("gradient", (xx * 255 // 639).astype(np.uint8)),
                      ("radial", np.clip(255 - np.hypot(yy - 240, xx - 320), 0, 255).astype(np.uint8))):
        w = ic.check(img, None, params=params)
        assert w and w[0].code == "not_ultrasound", (name, w)


def test_colour_doppler_overlay_is_flagged(sample_images: list[Path], params: dict) -> None:
    grey = np.asarray(Image.open(sample_images[0]).convert("L"))
    rgb = np.stack([grey] * 3, -1).copy()
    h, w = grey.shape
    rgb[h // 3 : h // 3 + h // 8, w // 3 : w // 3 + w // 6] = (220, 40, 30)  # a colour-flow box, ~2 % of the frame
    rgb[h // 2 : h // 2 + h // 12, w // 2 : w // 2 + w // 8] = (40, 80, 230)
    codes = [x.code for x in ic.check(rgb, None, params=params)]
    assert codes and codes[0] == "colour"
    assert ic.check(np.stack([grey] * 3, -1), None, params=params) == ic.check(grey, None, params=params)


def test_tight_lesion_crop_is_flagged(data_root: Path, predictor, params: dict) -> None:
    flagged = 0
    names = ["malignant (10)", "benign (12)", "malignant (30)", "benign (40)"]
    for n in names:
        img = np.asarray(Image.open(data_root / "busi" / n.split(" ")[0] / f"{n}.png").convert("L"))
        mask = np.asarray(Image.open(data_root / "busi" / n.split(" ")[0] / f"{n}_mask.png").convert("L")) > 127
        ys, xs = np.nonzero(mask)
        my, mx = (ys.max() - ys.min()) // 8, (xs.max() - xs.min()) // 8
        crop = img[max(0, ys.min() - my) : ys.max() + my, max(0, xs.min() - mx) : xs.max() + mx]
        full_w = [x.code for x in ic.check(img, predictor.predict(img), params=params)]
        assert "lesion_crop" not in full_w
        flagged += bool(ic.check(crop, predictor.predict(crop), params=params))
    assert flagged >= 3, f"only {flagged} of {len(names)} tight crops were flagged"


def test_the_card_block_wins(sample_images: list[Path], params: dict) -> None:
    strict = copy.deepcopy(params)
    strict["thresholds"]["unlike_distance"] = 0.0  # a card that calls everything unlike its training data
    img = load_image(sample_images[0]).frame(0)
    card = {"input_check": strict}
    assert ic.load_params(card) is strict
    assert [w.code for w in ic.check(img, None, params=ic.load_params(card))] == ["unlike_training"]
    assert ic.warnings_csv(ic.check(img, None, params=strict)) == "unlike_training"


@pytest.mark.parametrize("shape", [(1, 1), (1, 500), (8, 400)])
def test_tiny_images_are_flagged_not_crashed(shape: tuple[int, int], params: dict) -> None:
    w = ic.check(np.zeros(shape, np.uint8) + 80, None, params=params)
    assert [x.code for x in w] == ["not_ultrasound"] and "too small" in w[0].message


def test_the_image_part_worked_out_ahead_gives_the_same_warnings(sample_images: list[Path], params: dict,
                                                                 tmp_path: Path, predictor) -> None:
    """The batch's reader thread works out the image-only part before the model runs (issue 27):
    the warnings must be those of the check done in one go, a Doppler-coloured frame included."""
    import threading

    from busapp.core import batch

    img = load_image(sample_images[0]).frame(0)
    rgb = np.dstack([img] * 3) if img.ndim == 2 else img.copy()
    h, w = rgb.shape[:2]
    rgb[h // 3 : h // 3 + h // 8, w // 3 : w // 3 + w // 6] = (220, 40, 30)  # a colour-flow box
    for frame in (img, rgb):
        pred = predictor.predict(frame)
        assert ic.check(frame, pred, params=params, part=ic.image_part(frame)) == ic.check(frame, pred, params=params)
    threads: list[str] = []
    real = ic.image_part

    def spy(image):
        threads.append(threading.current_thread().name)
        return real(image)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ic, "image_part", spy)
        (tmp_path / "in").mkdir()
        Image.fromarray(rgb).save(tmp_path / "in" / "doppler.png")
        r = batch.run_batch(tmp_path / "in", tmp_path / "out", predictor)
    assert threads == ["busapp-batch-reader"]  # once, on the reader thread, not on the model's
    rows = batch.read_csv_rows(tmp_path / "out" / "results.csv")
    assert r.analysed == 1 and rows[0]["input_warnings"] == "colour"
    assert rows[0]["input_warnings"] == ic.warnings_csv(ic.check(rgb, predictor.predict(rgb), params=params))


@pytest.mark.parametrize("shape", [(1, 1), (3, 40), (37, 29)])
def test_box_means_from_one_summed_area_table_match_a_direct_window_mean(shape: tuple[int, int]) -> None:
    g = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    table = ic._integral(g, 4)
    for k in (3, 5, 9):
        r = k // 2
        padded = np.pad(g, r, mode="edge").astype(np.float64)
        direct = np.array([[padded[y : y + k, x : x + k].mean() for x in range(shape[1])] for y in range(shape[0])])
        np.testing.assert_allclose(ic._box_mean(table, 4, k, shape), direct, rtol=0, atol=1e-12)
