"""The card's outline-withholding rules, and that the predictor applies them and says why."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from busapp.core.predictor import Predictor, outline_suppressed

CLASSES = ("normal", "benign", "malignant")


def test_top_class_rule_needs_a_confident_normal():
    assert outline_suppressed(np.array([0.7, 0.2, 0.1]), CLASSES, 0.6, True, None) is not None
    assert outline_suppressed(np.array([0.5, 0.3, 0.2]), CLASSES, 0.6, True, None) is None  # below the line
    assert outline_suppressed(np.array([0.7, 0.2, 0.1]), CLASSES, 0.6, False, None) is None  # rule off


def test_threshold_rule_applies_whatever_the_top_class():
    note = outline_suppressed(np.array([0.25, 0.6, 0.15]), CLASSES, 0.6, False, 0.2)
    assert note is not None and "0.25" in note and "0.20" in note
    assert outline_suppressed(np.array([0.19, 0.6, 0.21]), CLASSES, 0.6, False, 0.2) is None


def _copy_with_rules(bundle_dir, dest, **rules):
    shutil.copytree(bundle_dir, dest)
    card = json.loads((dest / "card.json").read_text())
    card["postprocessing"].update(rules)
    (dest / "card.json").write_text(json.dumps(card))
    return dest


def test_predictor_withholds_the_outline_and_says_why(bundle_dir, sample_images, tmp_path):
    with Image.open(sample_images[0]) as im:
        image = np.asarray(im.convert("L"))
    open_rules = dict(suppress_mask_when_normal=False, suppress_mask_when_normal_at_least=None, min_area_fraction=0.0)
    shown = Predictor(_copy_with_rules(bundle_dir, tmp_path / "a", **open_rules)).predict(image)
    assert shown.mask.any() and shown.outline_note is None  # a sample with a lesion: outlined
    assert "outline_note" not in shown.to_json()

    # Threshold 0: any p(normal) withholds the outline.
    withheld = Predictor(_copy_with_rules(bundle_dir, tmp_path / "b", **{**open_rules,
                         "suppress_mask_when_normal_at_least": 0.0})).predict(image)
    assert not withheld.mask.any() and withheld.mask.shape == image.shape
    assert withheld.probabilities == pytest.approx(shown.probabilities)
    assert withheld.to_json()["outline_note"] == withheld.outline_note and "normal" in withheld.outline_note


def test_largest_region_keeps_one_filled_outline():
    from busapp.core.predictor import lesion_mask
    from busapp.core.preprocess import letterbox_geometry

    lb = letterbox_geometry(64, 64, 64)  # no padding, no resizing
    prob = np.zeros((64, 64), np.float32)
    prob[10:30, 10:30] = 0.9
    prob[15:20, 15:20] = 0.1  # a hole
    prob[50:55, 50:55] = 0.9  # a stray blob
    every = lesion_mask(prob, lb, 0.5, 0.0)
    largest = lesion_mask(prob, lb, 0.5, 0.0, keep="largest")
    assert every[52, 52] and not largest[52, 52]
    assert not every[17, 17] and largest[17, 17]
    assert largest.sum() == 400


def test_predictor_applies_the_cards_mask_keep(bundle_dir, sample_images, tmp_path):
    from busapp.core.measure import largest_component
    from busapp.core.model_bundle import ModelBundleError

    with Image.open(sample_images[0]) as im:
        image = np.asarray(im.convert("L"))
    open_rules = dict(suppress_mask_when_normal=False, suppress_mask_when_normal_at_least=None, min_area_fraction=0.0)
    every = Predictor(_copy_with_rules(bundle_dir, tmp_path / "a", **open_rules, mask_keep="all")).predict(image)
    one = Predictor(_copy_with_rules(bundle_dir, tmp_path / "b", **open_rules, mask_keep="largest")).predict(image)
    assert one.mask.any() and np.array_equal(one.mask, largest_component(every.mask))
    with pytest.raises(ModelBundleError, match="mask_keep"):
        Predictor(_copy_with_rules(bundle_dir, tmp_path / "c", mask_keep="biggest"))


def test_a_region_under_the_minimum_area_gets_no_outline_and_a_reason(bundle_dir, sample_images, tmp_path):
    with Image.open(sample_images[0]) as im:
        image = np.asarray(im.convert("L"))
    open_rules = dict(suppress_mask_when_normal=False, suppress_mask_when_normal_at_least=None)
    shown = Predictor(_copy_with_rules(bundle_dir, tmp_path / "a", **open_rules, min_area_fraction=0.0)).predict(image)
    share = shown.mask.mean()
    assert share > 0
    # A minimum above the region's share (model resolution and image size differ a little): dropped, said why.
    small = Predictor(_copy_with_rules(bundle_dir, tmp_path / "b", **open_rules,
                                       min_area_fraction=min(1.0, 2 * share))).predict(image)
    assert not small.mask.any() and "smallest outline" in small.outline_note
    # A minimum below it: outlined as before, no note.
    kept = Predictor(_copy_with_rules(bundle_dir, tmp_path / "c", **open_rules,
                                      min_area_fraction=share / 2)).predict(image)
    assert np.array_equal(kept.mask, shown.mask) and kept.outline_note is None
