"""Arrays and training batches: preprocessed once, cached, augmented on the fly (tf.data on
TensorFlow, a PyDataset on JAX)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from busapp.core.preprocess import mask_to_input, preprocess, scale_intensity
from busapp.training.data import Record, load_image, load_mask
from busapp.training.marks import paint_marks

# The value a letterbox pad pixel has after intensity scaling. Geometric augmentation fills
# with it, so a rotated image's new corners look like padding, not like mid-grey tissue.
PAD_VALUE = float(scale_intensity(np.zeros(1, np.uint8))[0])


def packed_path(data_root: Path, size: int) -> Path:
    """A packed data root (``scripts/pack_dev_data.py``, for a GPU machine with a small working
    tree) holds the records' letterboxed inputs at one size instead of the images."""
    return data_root / f"packed_{size}.npz"


def build_arrays(data_root: Path, records: list[Record], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x: (N, size, size, 1) float32 model inputs; m: (N, size, size, 1) {0,1}; y: (N,) class index."""
    ys = np.array([r.label_index for r in records], np.int32)
    if packed_path(data_root, size).exists():
        with np.load(packed_path(data_root, size)) as z:
            row = {k: i for i, k in enumerate(z["keys"])}
            missing = [r.key for r in records if r.key not in row]
            if missing:
                raise ValueError(f"{packed_path(data_root, size)} lacks {len(missing)} records, e.g. {missing[0]}")
            idx = np.array([row[r.key] for r in records], np.int64)
            xs = scale_intensity(_packed_inputs(z, idx))[..., None]
            ms = np.unpackbits(z["m"][idx], axis=-1, count=size).astype(np.float32)[..., None]
        return xs, ms, ys
    xs = np.empty((len(records), size, size, 1), np.float32)
    ms = np.empty((len(records), size, size, 1), np.float32)
    for i, rec in enumerate(records):
        img = load_image(data_root, rec)
        x, lb = preprocess(img, size)
        xs[i] = x
        ms[i, :, :, 0] = mask_to_input(load_mask(data_root, rec, img.shape), lb)
    return xs, ms, ys


def image_sizes(data_root: Path, records: list[Record], size: int) -> list[tuple[int, int]]:
    """(width, height) of each record's image, from the image or from a packed data root."""
    if packed_path(data_root, size).exists():
        with np.load(packed_path(data_root, size)) as z:
            wh = dict(zip(z["keys"], z["wh"].tolist(), strict=True))
        return [tuple(wh[r.key]) for r in records]
    out = []
    for rec in records:
        with Image.open(data_root / rec.dataset / rec.image) as im:
            out.append(im.size)
    return out


def _png(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _packed_inputs(z, idx: np.ndarray) -> np.ndarray:
    """The packed uint8 inputs of rows ``idx``: one PNG each (lossless, 30 % smaller than the
    array deflated, which is what lets every site's images fit a lent machine's working tree)."""
    if "x" in z.files:  # a pack written before the PNGs
        return z["x"][idx]
    import io

    data, starts = z["x_png"], z["x_png_starts"]
    return np.stack([np.asarray(Image.open(io.BytesIO(data[starts[i] : starts[i + 1]].tobytes())).convert("L"))
                     for i in idx])


def _mask_runs(mask: np.ndarray) -> np.ndarray:
    """Where a row-major flattened bool mask changes value (int32): a blob's outline in a few kB."""
    flat = np.concatenate([[False], np.asarray(mask, bool).ravel(), [False]])
    return np.flatnonzero(flat[1:] != flat[:-1]).astype(np.int32)


def _mask_from_runs(runs: np.ndarray, width: int, height: int) -> np.ndarray:
    flat = np.zeros(width * height + 1, np.int8)
    np.add.at(flat, runs[0::2], 1)
    np.add.at(flat, runs[1::2], -1)
    return (np.cumsum(flat[:-1]) > 0).reshape(height, width)


def full_masks(data_root: Path, records: list[Record], size: int) -> list[np.ndarray]:
    """Each record's lesion mask at the image's own size (bool), from the mask files or from a
    packed data root: what a Dice at original resolution is measured against."""
    path = packed_path(data_root, size)
    if not path.exists():
        return [load_mask(data_root, r, (h, w)) for r, (w, h) in zip(records, image_sizes(data_root, records, size),
                                                                      strict=True)]
    with np.load(path) as z:
        if "runs" not in z.files:
            raise ValueError(f"{path} holds no full-size masks: pack it again (scripts/pack_dev_data.py)")
        row = {k: i for i, k in enumerate(z["keys"])}
        starts, runs, wh = z["run_starts"], z["runs"], z["wh"]
        out = []
        for r in records:
            i = row[r.key]
            out.append(_mask_from_runs(runs[starts[i] : starts[i + 1]], *wh[i]))
    return out


def pack_arrays(data_root: Path, records: list[Record], size: int, out_root: Path) -> Path:
    """Write a packed data root for ``records``: the manifests, each image's letterboxed input as
    uint8, its mask (bit-packed), its size and its full-size mask (as runs). ``build_arrays``,
    ``image_sizes`` and ``full_masks`` then give the same arrays as from the images."""
    import shutil

    from busapp.core.preprocess import INTENSITY_OFFSET, INTENSITY_SCALE
    from busapp.training.data import SITES

    x, m, _ = build_arrays(data_root, records, size)
    # The preprocessing scales uint8 pixels, so its output maps back to them exactly.
    u8 = np.rint(x[..., 0] * INTENSITY_SCALE + INTENSITY_OFFSET).astype(np.uint8)
    if not np.array_equal(scale_intensity(u8), x[..., 0]):
        raise ValueError("the model inputs are not scaled 8-bit pixels: they cannot be packed")
    for d in SITES:  # every manifest, so each split reads from the pack as from the data
        (out_root / d).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / d / "manifest.csv", out_root / d / "manifest.csv")
    path = packed_path(out_root, size)
    tmp = path.with_name(path.name + ".tmp.npz")
    runs = [_mask_runs(mask) for mask in full_masks(data_root, records, size)]
    pngs = [_png(a) for a in u8]
    np.savez_compressed(tmp, keys=np.array([r.key for r in records]), m=np.packbits(m[..., 0] > 0.5, axis=-1),
                        x_png=np.frombuffer(b"".join(pngs), np.uint8), x_png_starts=np.cumsum([0, *map(len, pngs)]),
                        wh=np.array(image_sizes(data_root, records, size), np.int64),
                        runs=np.concatenate(runs), run_starts=np.cumsum([0, *map(len, runs)]))
    tmp.replace(path)
    return path


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
_BASE = {"blur": None, "depth_gain": 0.0, "contrast_about_pad": False, "marks": 0.0}
AUGMENT = {
    "standard": {**_BASE, "rotate": 0.04, "zoom": 0.15, "shift": 0.06, "contrast": (0.8, 1.25), "brightness": 0.12,
                 "gamma": None, "speckle": 0.0},
    "strong": {**_BASE, "rotate": 0.06, "zoom": 0.25, "shift": 0.08, "contrast": (0.7, 1.4), "brightness": 0.15,
               "gamma": (0.7, 1.5), "speckle": 0.15},
}
AUGMENT["domain"] = {**AUGMENT["strong"], "blur": 0.3, "depth_gain": 0.5, "contrast_about_pad": True}
# "domain_marks": also synthetic burned-in calipers and text on half the images (training/marks.py).
AUGMENT["domain_marks"] = {**AUGMENT["domain"], "marks": 0.5}


class _TFRandom:
    """TensorFlow's global-seeded random ops inside a tf.data map, as every recorded recipe trained."""

    def __init__(self) -> None:
        import tensorflow as tf

        self.tf = tf

    def uniform(self, shape, low, high):
        return self.tf.random.uniform(shape, low, high)

    def normal(self, shape):
        return self.tf.random.normal(shape)

    def resample(self, xb, scale):
        """Down to ``scale`` of the size (antialiased) and back up: a coarser effective resolution."""
        tf = self.tf
        size = tf.shape(xb)[1]
        small = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
        return tf.image.resize(tf.image.resize(xb, (small, small), antialias=True), (size, size))


class _KerasRandom:
    """The same draws through ``keras.random``, for any backend, called eagerly on arrays."""

    def __init__(self, seed: int) -> None:
        import keras

        self.keras = keras
        self.gen = keras.random.SeedGenerator(seed)

    def uniform(self, shape, low, high):
        return self.keras.random.uniform(shape, low, high, seed=self.gen)

    def normal(self, shape):
        return self.keras.random.normal(shape, seed=self.gen)

    def resample(self, xb, scale):
        ops = self.keras.ops
        size = int(xb.shape[1])
        small = int(size * float(scale))
        down = ops.image.resize(xb, (small, small), interpolation="bilinear", antialias=True)
        return ops.image.resize(down, (size, size), interpolation="bilinear")


def _geometric_layers(a: dict, seed: int) -> list:
    import keras

    return [  # applied in this order
        keras.layers.RandomFlip("horizontal", seed=seed + 3),
        keras.layers.RandomRotation(a["rotate"], fill_mode="constant", fill_value=0.0, seed=seed),
        keras.layers.RandomZoom((-a["zoom"], a["zoom"]), fill_mode="constant", fill_value=0.0, seed=seed + 1),
        keras.layers.RandomTranslation(a["shift"], a["shift"], fill_mode="constant", fill_value=0.0, seed=seed + 2),
    ]


def augment_batch(xb, mb, a: dict, geometric: list, rng):
    """One training batch through the geometric and intensity transforms of ``a`` (an AUGMENT
    entry), in ``keras.ops`` so that tf.data (TensorFlow) and eager JAX or PyTorch share it."""
    from keras import ops

    # Image and mask go through the same geometric transform as two channels of one tensor; the
    # image is shifted so that the fill value 0 means "padding".
    both = ops.concatenate([xb - PAD_VALUE, mb], axis=-1)
    for layer in geometric:
        both = layer(both, training=True)
    xb, mb = both[..., :1] + PAD_VALUE, ops.cast(both[..., 1:] > 0.5, "float32")
    n = ops.shape(xb)[0]
    # Brightness, gamma and noise leave the padding black. The contrast factor scales about
    # mid-grey, so below 1 it lifts the padding to a flat dark grey (as every recipe so far
    # was trained; kept so that the recorded recipes still mean what they trained with).
    inside = ops.cast(xb > PAD_VALUE + 1e-3, "float32")
    if a["blur"] is not None:
        # one scale per batch (static shapes); about half the batches keep full resolution
        scale = ops.minimum(rng.uniform((), a["blur"], 2.0 - a["blur"]), 1.0)  # the smallest scale
        xb = rng.resample(xb, scale)
        xb = xb * inside + PAD_VALUE * (1.0 - inside)
    if a["depth_gain"] > 0:
        # brightness that ramps with depth (image rows), top to bottom, about the middle
        depth = ops.reshape(ops.linspace(-0.5, 0.5, ops.shape(xb)[1]), (1, -1, 1, 1))
        gain = 1.0 + rng.uniform((n, 1, 1, 1), -a["depth_gain"], a["depth_gain"]) * depth
        xb = PAD_VALUE + (xb - PAD_VALUE) * gain
    if a["gamma"] is not None:
        # on [0, 1] brightness, where a gamma curve keeps black black and white white
        u = ops.clip((xb - PAD_VALUE) / (1.0 - PAD_VALUE), 0.0, 1.0)
        u = u ** rng.uniform((n, 1, 1, 1), *a["gamma"])
        xb = u * (1.0 - PAD_VALUE) + PAD_VALUE
    if a["speckle"] > 0:
        sigma = rng.uniform((n, 1, 1, 1), 0.0, a["speckle"])
        xb = PAD_VALUE + (xb - PAD_VALUE) * (1.0 + sigma * rng.normal(ops.shape(xb)))
    contrast = rng.uniform((n, 1, 1, 1), *a["contrast"])
    brightness = rng.uniform((n, 1, 1, 1), -a["brightness"], a["brightness"])
    if a["contrast_about_pad"]:
        xb = PAD_VALUE + (xb - PAD_VALUE) * contrast + brightness * inside
    else:
        xb = xb * contrast + brightness * inside
    if a["marks"] > 0:
        xb = paint_marks(ops.clip(xb, PAD_VALUE, 1.0), inside, a["marks"], PAD_VALUE, rng)
    return ops.clip(xb, PAD_VALUE, 1.0), mb


def make_tf_dataset(x, m, y, batch_size: int, training: bool, seed: int, augment: str = "standard"):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, m, tf.one_hot(y, 3)))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    if training:
        a, geometric, rng = AUGMENT[augment], _geometric_layers(AUGMENT[augment], seed), _TFRandom()

        def to_training_batch(xb, mb, yb):
            xb, mb = augment_batch(xb, mb, a, geometric, rng)
            return xb, {"mask_logits": mb, "class_logits": yb}

        ds = ds.map(to_training_batch, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda xb, mb, yb: (xb, {"mask_logits": mb, "class_logits": yb}))
    return ds.prefetch(tf.data.AUTOTUNE)


def make_array_batches(x, m, y, batch_size: int, seed: int, augment: str = "standard"):
    """Shuffled, augmented training batches without TensorFlow (``keras.utils.PyDataset``): the
    path for the JAX backend on a lent GPU machine, where TensorFlow is not installed."""
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order_rng = np.random.default_rng(seed)
            self.order = self.order_rng.permutation(len(x))
            self.a = AUGMENT[augment]
            self.geometric = _geometric_layers(self.a, seed)
            self.rng = _KerasRandom(seed + 4)
            self.onehot = np.eye(3, dtype=np.float32)[y]

        def __len__(self) -> int:
            return len(x) // batch_size  # drop the remainder, as the tf.data path does

        def __getitem__(self, i: int):
            idx = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            xb, mb = augment_batch(x[idx], m[idx], self.a, self.geometric, self.rng)
            return xb, {"mask_logits": mb, "class_logits": self.onehot[idx]}

        def on_epoch_end(self) -> None:
            self.order = self.order_rng.permutation(len(x))

    return AugmentedBatches()


def make_training_data(x, m, y, batch_size: int, seed: int, augment: str = "standard"):
    """tf.data on the TensorFlow backend (every recorded recipe), a PyDataset on any other."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return make_tf_dataset(x, m, y, batch_size, True, seed, augment)
    return make_array_batches(x, m, y, batch_size, seed, augment)
