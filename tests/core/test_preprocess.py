import numpy as np
import pytest
from PIL import Image

from busapp.core.preprocess import (
    INPUT_SIZE,
    letterbox_geometry,
    mask_from_output,
    mask_to_input,
    preprocess,
    to_grey_u8,
)


def test_letterbox_keeps_aspect_ratio_and_centres():
    lb = letterbox_geometry(600, 300, 224)
    assert (lb.scaled_width, lb.scaled_height) == (224, 112)
    assert (lb.pad_x, lb.pad_y) == (0, 56)
    lb = letterbox_geometry(190, 335, 224)
    assert lb.scaled_height == 224 and lb.pad_y == 0
    assert abs(lb.scaled_width / lb.scaled_height - 190 / 335) < 0.01


def test_preprocess_range_padding_and_shape():
    img = np.full((300, 600), 255, np.uint8)
    x, lb = preprocess(img)
    assert x.shape == (INPUT_SIZE, INPUT_SIZE, 1) and x.dtype == np.float32
    assert x[lb.pad_y + 5, 100, 0] == pytest.approx(1.0)
    assert x[0, 100, 0] == pytest.approx(-127 / 128)  # padding is black


def test_rgb_luma_matches_pillow_L():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ours = to_grey_u8(rgb)
    pil = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1


def test_sixteen_bit_uses_full_range():
    a = np.linspace(1000, 3000, 100 * 80).reshape(100, 80).astype(np.uint16)
    g = to_grey_u8(a)
    assert g.dtype == np.uint8 and g.min() == 0 and g.max() == 255


def test_mask_round_trip_through_letterbox():
    mask = np.zeros((471, 562), bool)
    mask[150:300, 200:380] = True
    lb = letterbox_geometry(562, 471)
    target = mask_to_input(mask, lb)
    back = mask_from_output(target, lb)
    assert back.shape == mask.shape
    inter = (back & mask).sum()
    assert 2 * inter / (back.sum() + mask.sum()) > 0.97
