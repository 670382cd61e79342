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
