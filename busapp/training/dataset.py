"""Arrays and tf.data pipelines for training: preprocessed once, cached, augmented on the fly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from busapp.core.preprocess import mask_to_input, preprocess, scale_intensity
from busapp.training.data import Record, load_image, load_mask

# The value a letterbox pad pixel has after intensity scaling. Geometric augmentation fills
# with it, so a rotated image's new corners look like padding, not like mid-grey tissue.
PAD_VALUE = float(scale_intensity(np.zeros(1, np.uint8))[0])


def build_arrays(data_root: Path, records: list[Record], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x: (N, size, size, 1) float32 model inputs; m: (N, size, size, 1) {0,1}; y: (N,) class index."""
    xs = np.empty((len(records), size, size, 1), np.float32)
    ms = np.empty((len(records), size, size, 1), np.float32)
    for i, rec in enumerate(records):
        img = load_image(data_root, rec)
        x, lb = preprocess(img, size)
        xs[i] = x
        ms[i, :, :, 0] = mask_to_input(load_mask(data_root, rec, img.shape), lb)
    ys = np.array([r.label_index for r in records], np.int32)
    return xs, ms, ys


def cached_arrays(data_root: Path, records: list[Record], size: int, cache_dir: Path):
    key = hashlib.sha256(("|".join(r.key for r in records) + f"|{size}").encode()).hexdigest()[:16]
    path = cache_dir / f"arrays_{size}_{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["x"], z["m"], z["y"]
    x, m, y = build_arrays(data_root, records, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, x=x, m=m, y=y)
    tmp.replace(path)
    return x, m, y


# Geometric and intensity ranges per augmentation strength. "strong" widens every range and adds a
# gamma curve and multiplicative (speckle-like) noise: ultrasound gain, depth and probe differ far
# more between machines than the "standard" ranges cover, and training accuracy reaches 1.0 with them.
# "domain" adds what differs between scanners and sites rather than between frames: a lower
# effective resolution (down- and up-sampled, as a coarser probe or a smaller stored image), a
# depth-dependent gain (time-gain compensation set differently), and contrast about the padding
# value, so that padding stays black as on every real scan. ``blur``: the smallest resampling scale.
_BASE = {"blur": None, "depth_gain": 0.0, "contrast_about_pad": False}
AUGMENT = {
    "standard": {**_BASE, "rotate": 0.04, "zoom": 0.15, "shift": 0.06, "contrast": (0.8, 1.25), "brightness": 0.12,
                 "gamma": None, "speckle": 0.0},
    "strong": {**_BASE, "rotate": 0.06, "zoom": 0.25, "shift": 0.08, "contrast": (0.7, 1.4), "brightness": 0.15,
               "gamma": (0.7, 1.5), "speckle": 0.15},
}
AUGMENT["domain"] = {**AUGMENT["strong"], "blur": 0.3, "depth_gain": 0.5, "contrast_about_pad": True}


def make_tf_dataset(x, m, y, batch_size: int, training: bool, seed: int, augment: str = "standard"):
    import keras
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, m, tf.one_hot(y, 3)))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    if training:
        a = AUGMENT[augment]
        rotate = keras.layers.RandomRotation(a["rotate"], fill_mode="constant", fill_value=0.0, seed=seed)
        zoom = keras.layers.RandomZoom((-a["zoom"], a["zoom"]), fill_mode="constant", fill_value=0.0, seed=seed + 1)
        shift = keras.layers.RandomTranslation(a["shift"], a["shift"], fill_mode="constant", fill_value=0.0,
                                               seed=seed + 2)
        flip = keras.layers.RandomFlip("horizontal", seed=seed + 3)

        def augment_batch(xb, mb, yb):
            # Image and mask go through the same geometric transform as two channels of one
            # tensor; the image is shifted so that the fill value 0 means "padding".
            both = tf.concat([xb - PAD_VALUE, mb], axis=-1)
            both = shift(zoom(rotate(flip(both, training=True), training=True), training=True), training=True)
            xb, mb = both[..., :1] + PAD_VALUE, tf.cast(both[..., 1:] > 0.5, tf.float32)
            n = tf.shape(xb)[0]
            # Brightness, gamma and noise leave the padding black. The contrast factor scales about
            # mid-grey, so below 1 it lifts the padding to a flat dark grey (as every recipe so far
            # was trained; kept so that the recorded recipes still mean what they trained with).
            inside = tf.cast(xb > PAD_VALUE + 1e-3, tf.float32)
            if a["blur"] is not None:
                # one scale per batch (static shapes); about half the batches keep full resolution
                size = tf.shape(xb)[1]
                scale = tf.minimum(tf.random.uniform((), a["blur"], 2.0 - a["blur"]), 1.0)  # the smallest scale
                small = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
                xb = tf.image.resize(tf.image.resize(xb, (small, small), antialias=True), (size, size))
                xb = xb * inside + PAD_VALUE * (1.0 - inside)
            if a["depth_gain"] > 0:
                # brightness that ramps with depth (image rows), top to bottom, about the middle
                depth = tf.linspace(-0.5, 0.5, tf.shape(xb)[1])[None, :, None, None]
                gain = 1.0 + tf.random.uniform((n, 1, 1, 1), -a["depth_gain"], a["depth_gain"]) * depth
                xb = PAD_VALUE + (xb - PAD_VALUE) * gain
            if a["gamma"] is not None:
                # on [0, 1] brightness, where a gamma curve keeps black black and white white
                u = tf.clip_by_value((xb - PAD_VALUE) / (1.0 - PAD_VALUE), 0.0, 1.0)
                u = u ** tf.random.uniform((n, 1, 1, 1), *a["gamma"])
                xb = u * (1.0 - PAD_VALUE) + PAD_VALUE
            if a["speckle"] > 0:
                sigma = tf.random.uniform((n, 1, 1, 1), 0.0, a["speckle"])
                xb = PAD_VALUE + (xb - PAD_VALUE) * (1.0 + sigma * tf.random.normal(tf.shape(xb)))
            contrast = tf.random.uniform((n, 1, 1, 1), *a["contrast"])
            brightness = tf.random.uniform((n, 1, 1, 1), -a["brightness"], a["brightness"])
            if a["contrast_about_pad"]:
                xb = PAD_VALUE + (xb - PAD_VALUE) * contrast + brightness * inside
            else:
                xb = xb * contrast + brightness * inside
            xb = tf.clip_by_value(xb, PAD_VALUE, 1.0)
            return xb, {"mask_logits": mb, "class_logits": yb}

        ds = ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda xb, mb, yb: (xb, {"mask_logits": mb, "class_logits": yb}))
    return ds.prefetch(tf.data.AUTOTUNE)
