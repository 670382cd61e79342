"""The mask loss: soft Dice over lesion images only (normal images are left to the pixel
cross-entropy), so a large lesion cannot drown a small one and a normal image still pays for a blob."""

import numpy as np
import pytest


def test_dice_term_ignores_normal_images_and_cross_entropy_charges_their_blobs():
    pytest.importorskip("keras")
    from busapp.training.fit import dice_loss, mask_loss

    truth = np.zeros((2, 32, 32, 1), np.float32)
    truth[1, 5:10, 5:10] = 1  # image 0 normal, image 1 with a lesion
    clean = np.where(truth > 0, 8.0, -8.0).astype(np.float32)
    blob = clean.copy()
    blob[0, :8, :8] = 8.0  # a false blob on the normal image

    assert float(dice_loss(truth, clean)) < 0.01
    assert float(dice_loss(truth, blob)) == pytest.approx(float(dice_loss(truth, clean)), abs=1e-6)
    assert float(mask_loss(truth, blob)) > float(mask_loss(truth, clean)) + 0.1
    missed = clean.copy()
    missed[1] = -8.0  # the lesion image predicted empty: the Dice term charges it in full
    assert float(dice_loss(truth, missed)) > 0.9
