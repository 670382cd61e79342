"""A packed data root (for a lent GPU machine) gives training and cross-validation the same
arrays and image sizes as the images themselves."""

import numpy as np
import pytest


def test_packed_root_loads_as_the_images(data_root, tmp_path):
    from busapp.training.data import records_for
    from busapp.training.dataset import build_arrays, image_sizes, pack_arrays

    recs = records_for("train", data_root)[::60][:8]
    assert {r.label for r in recs} >= {"benign", "malignant"}
    pack_arrays(data_root, recs, 64, tmp_path)
    for packed, original in zip(build_arrays(tmp_path, recs, 64), build_arrays(data_root, recs, 64), strict=True):
        np.testing.assert_array_equal(packed, original)
    assert image_sizes(tmp_path, recs, 64) == image_sizes(data_root, recs, 64)
    # the manifests travel, so the split's records are read from the pack as from the data
    assert [r.key for r in records_for("train", tmp_path)] == [r.key for r in records_for("train", data_root)]

    other = records_for("val", data_root)[:1]
    with pytest.raises(ValueError, match="lacks 1 records"):
        build_arrays(tmp_path, other, 64)


def test_packed_root_keeps_full_size_masks(data_root, tmp_path):
    """Held-out Dice is measured at the image's own size, so a pack carries those masks too."""
    from busapp.training.data import records_for
    from busapp.training.dataset import full_masks, pack_arrays

    train = records_for("train", data_root)
    recs = ([r for r in train if len(r.masks) > 1][:2] + [r for r in train if r.label == "normal"][:2]
            + [r for r in train if r.label == "malignant"][:2])
    assert any(r.label == "normal" for r in recs) and any(len(r.masks) > 1 for r in recs)
    pack_arrays(data_root, recs, 64, tmp_path)
    packed, original = full_masks(tmp_path, recs, 64), full_masks(data_root, recs, 64)
    for p, o in zip(packed, original, strict=True):
        assert p.dtype == bool and p.shape == o.shape
        np.testing.assert_array_equal(p, o)
    assert any(o.any() for o in original) and not all(o.any() for o in original)


def test_mask_runs_round_trip_at_the_edges():
    from busapp.training.dataset import _mask_from_runs, _mask_runs

    m = np.zeros((3, 4), bool)
    m[0, 0] = m[2, 3] = True  # first and last pixel
    m[1, 1:3] = True
    np.testing.assert_array_equal(_mask_from_runs(_mask_runs(m), 4, 3), m)
    np.testing.assert_array_equal(_mask_from_runs(_mask_runs(~m), 4, 3), ~m)
