"""Training losses: the image-level presence term charges a normal image for a small false blob."""

import numpy as np
import pytest


def test_presence_loss_charges_a_small_false_blob_on_a_normal_image():
    pytest.importorskip("keras")
    from busapp.training.fit import make_mask_loss, mask_loss, presence_loss

    truth = np.zeros((2, 32, 32, 1), np.float32)
    truth[1, 5:10, 5:10] = 1  # image 0 normal, image 1 with a lesion
    clean = np.where(truth > 0, 6.0, -6.0).astype(np.float32)
    blob = clean.copy()
    blob[0, :3, :3] = 6.0  # nine false pixels on the normal image

    assert float(presence_loss(truth, clean)) < 0.01
    assert float(presence_loss(truth, blob)) > 0.3
    # The pixel loss hardly moves: that is why the image-level term exists.
    assert float(mask_loss(truth, blob)) - float(mask_loss(truth, clean)) < 0.05
    assert make_mask_loss(0.0) is mask_loss
    combined = float(make_mask_loss(0.5)(truth, blob))
    assert combined == pytest.approx(float(mask_loss(truth, blob)) + 0.5 * float(presence_loss(truth, blob)), rel=1e-5)


def test_one_sided_presence_loss_ignores_lesion_images():
    pytest.importorskip("keras")
    from busapp.training.fit import presence_loss

    truth = np.zeros((2, 16, 16, 1), np.float32)
    truth[1, 4:8, 4:8] = 1
    faint = np.full((2, 16, 16, 1), -6.0, np.float32)  # the lesion image is missed entirely
    assert float(presence_loss(truth, faint)) > 2.0
    assert float(presence_loss(truth, faint, normal_only=True)) < 0.01
    faint[0, :4, :4] = 6.0  # and a false blob (k = 16 pixels) on the normal image counts in full
    assert float(presence_loss(truth, faint, normal_only=True)) > 3.0
