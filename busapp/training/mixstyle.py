"""MixStyle: a training-only layer that mixes feature "style" between the images of a batch.

Zhou et al. (ICLR 2021): a convolutional network's per-channel feature mean and standard deviation
carry much of an image's style (here: scanner, gain, speckle, post-processing), and a network that
sees those statistics mixed between images of different sites learns to depend on them less. Each
image's features are normalised by their own statistics and re-scaled with a convex mix of its own
and another batch image's, ``lambda ~ Beta(alpha, alpha)``, applied to a share ``p`` of the images.
The statistics are constants for the gradient. At inference the layer is the identity, so the
exported graph does not contain it.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="busapp")
class MixStyle(keras.layers.Layer):
    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.p, self.alpha, self.eps, self.seed = p, alpha, eps, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        n = ops.shape(x)[0]
        mu = ops.stop_gradient(ops.mean(x, axis=(1, 2), keepdims=True))
        sigma = ops.stop_gradient(ops.sqrt(ops.var(x, axis=(1, 2), keepdims=True) + self.eps))
        normed = (x - mu) / sigma
        lam = keras.random.beta((n, 1, 1, 1), self.alpha, self.alpha, seed=self.seed_generator)
        # Each image takes another image's statistics: a random permutation of the batch.
        perm = keras.random.shuffle(ops.arange(n), seed=self.seed_generator)
        mu_mix = lam * mu + (1.0 - lam) * ops.take(mu, perm, axis=0)
        sigma_mix = lam * sigma + (1.0 - lam) * ops.take(sigma, perm, axis=0)
        apply = keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator) < self.p
        return ops.where(apply, normed * sigma_mix + mu_mix, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "p": self.p, "alpha": self.alpha, "eps": self.eps, "seed": self.seed}
