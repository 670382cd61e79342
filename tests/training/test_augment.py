"""Training augmentation: both strengths keep masks binary, padding black and intensities in range."""

import numpy as np
import pytest


def _batch(n: int = 16, size: int = 64):
    from busapp.training.dataset import PAD_VALUE

    rng = np.random.default_rng(0)
    x = np.full((n, size, size, 1), PAD_VALUE, np.float32)
    x[:, 8:-8, 8:-8] = rng.uniform(-0.6, 0.9, (n, size - 16, size - 16, 1))
    m = np.zeros((n, size, size, 1), np.float32)
    m[:, 20:40, 22:44] = 1
    x[-1] = PAD_VALUE  # an image that is padding only
    y = np.arange(n, dtype=np.int32) % 3
    return x, m, y


def _first_batch(path: str, x, m, y, strength: str):
    """The first training batch of the tf.data path (TensorFlow) or of the PyDataset path (JAX on a
    lent GPU; here run eagerly on the TensorFlow backend), as numpy."""
    from busapp.training.dataset import make_array_batches, make_tf_dataset

    if path == "tf.data":
        xb, targets = next(iter(make_tf_dataset(x, m, y, len(x), True, seed=5, augment=strength)))
    else:
        xb, targets = make_array_batches(x, m, y, len(x), seed=5, augment=strength)[0]
    return np.asarray(xb), {k: np.asarray(v) for k, v in targets.items()}


@pytest.mark.parametrize("path", ["tf.data", "arrays"])
@pytest.mark.parametrize("strength", ["standard", "strong", "domain", "domain_marks"])
def test_augmented_batch_is_a_valid_training_batch(strength, path):
    pytest.importorskip("tensorflow")
    from busapp.training.dataset import PAD_VALUE

    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(5)  # as fit does: the unseeded intensity draws become reproducible
    x, m, y = _batch()
    xb, targets = _first_batch(path, x, m, y, strength)
    mb = targets["mask_logits"]
    assert xb.shape == x.shape and mb.shape == m.shape
    assert set(np.unique(mb)) <= {0.0, 1.0}
    assert xb.min() >= PAD_VALUE - 1e-6 and xb.max() <= 1.0 + 1e-6
    # Padding stays flat and dark: brightness, gamma and noise leave it alone; only the contrast
    # factor, which scales about mid-grey, lifts it (to at most PAD_VALUE * 0.7).
    flat = xb.reshape(len(xb), -1).std(1) < 1e-6
    assert flat.sum() == 1  # the padding-only image, and no other
    assert xb[flat].max() <= 0.7 * PAD_VALUE + 1e-6
    if strength.startswith("domain"):  # contrast about black: the padding stays exactly black
        assert np.allclose(xb[flat], PAD_VALUE, atol=1e-6)
    # The transforms move the lesion but keep most of it in the frame.
    kept = mb.reshape(len(mb), -1).sum(1) / m.reshape(len(m), -1).sum(1)
    assert np.median(kept) > 0.5
    # shuffled, so the labels are compared as counts
    np.testing.assert_array_equal(np.bincount(targets["class_logits"].argmax(1), minlength=3),
                                  np.bincount(y, minlength=3))


def test_domain_augmentation_keeps_padding_black_and_blurs():
    """"domain": contrast about the padding value, so padding stays exactly black; lower resolution
    smooths the tissue; masks and the value range stay valid."""
    pytest.importorskip("tensorflow")
    from busapp.training.dataset import PAD_VALUE, make_tf_dataset

    keras = pytest.importorskip("keras")

    def roughness(strength: str) -> float:
        """The smoothest of four batches: mean neighbouring-pixel difference in the tissue (the
        input is uniform noise; a batch is resampled with probability ~1/2)."""
        keras.utils.set_random_seed(5)
        x, m, y = _batch(n=32)
        values = []
        for seed in range(4):
            xb, targets = next(iter(make_tf_dataset(x, m, y, len(x), True, seed=seed, augment=strength)))
            xb, mb = xb.numpy(), targets["mask_logits"].numpy()
            assert set(np.unique(mb)) <= {0.0, 1.0}
            assert xb.min() >= PAD_VALUE - 1e-6 and xb.max() <= 1.0 + 1e-6
            flat = xb.reshape(len(xb), -1).std(1) < 1e-6
            if strength == "domain":  # the padding-only image stays black whatever the contrast
                assert flat.sum() == 1 and np.allclose(xb[flat], PAD_VALUE, atol=1e-6)
            values.append(float(np.abs(np.diff(xb[:, 28:36, 28:36, 0], axis=2)).mean()))
        return min(values)

    assert roughness("domain") < 0.8 * roughness("strong")


def test_strong_augmentation_varies_intensity_more_than_standard():
    pytest.importorskip("tensorflow")
    from busapp.training.dataset import PAD_VALUE, make_tf_dataset

    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(5)
    x, m, y = _batch(n=32)
    x[:] = PAD_VALUE
    x[:, 8:-8, 8:-8] = 0.2  # one flat grey, so only the intensity transforms change it

    def spread(strength: str) -> float:
        xb = next(iter(make_tf_dataset(x, m, y, len(x), True, seed=5, augment=strength)))[0].numpy()
        inside = xb[:, 28:36, 28:36]  # the centre stays inside the image under every geometric transform
        return float(inside.std())

    assert spread("strong") > 1.3 * spread("standard")


def test_array_batches_cover_each_image_once_per_epoch_and_reshuffle():
    pytest.importorskip("keras")
    from busapp.training.dataset import make_array_batches

    x, m, _ = _batch(n=20)
    batches = make_array_batches(x, m, np.arange(20) % 3, batch_size=8, seed=1)
    assert len(batches) == 2  # 20 // 8: the remainder is dropped, as tf.data does in training
    first = np.concatenate([batches[i][1]["class_logits"].argmax(1) for i in range(len(batches))])
    order1 = batches.order.copy()
    batches.on_epoch_end()
    assert len(first) == 16 and not np.array_equal(order1, batches.order)
    assert sorted(batches.order.tolist()) == list(range(20))


def test_mark_bank_draws_thin_bright_marks():
    from busapp.training.marks import BANK_SIZE, mark_bank

    bank = mark_bank(128)
    assert bank.shape == (BANK_SIZE, 128, 128, 1)
    share = (bank > 0).reshape(BANK_SIZE, -1).mean(1)
    assert (share > 0).all() and share.max() < 0.03  # every overlay has a mark; marks stay thin
    assert bank.max() <= 1.0 and bank[bank > 0].min() >= 0.6
    np.testing.assert_array_equal(bank, mark_bank(128, 20261202))  # drawn once, reproducibly


def test_marks_are_painted_inside_the_scan_only():
    keras = pytest.importorskip("keras")
    from busapp.training.dataset import PAD_VALUE
    from busapp.training.marks import paint_marks

    keras.utils.set_random_seed(3)
    x, _, _ = _batch(size=128)
    inside = (x > PAD_VALUE + 1e-3).astype(np.float32)

    class Draws:  # keras.random behind the interface augment_batch passes
        def uniform(self, shape, low, high):
            return keras.random.uniform(shape, low, high)

    every = np.asarray(paint_marks(x, inside, 1.0, PAD_VALUE, Draws()))
    assert (every >= x - 1e-6).all()  # marks only brighten
    changed = (every > x + 1e-6).reshape(len(x), -1).any(1)
    assert changed[:-1].all() and not changed[-1]  # every scan marked; the padding-only image not
    assert np.array_equal(every[inside == 0], x[inside == 0])
    none = np.asarray(paint_marks(x, inside, 0.0, PAD_VALUE, Draws()))
    np.testing.assert_array_equal(none, x)
