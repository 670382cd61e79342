"""busnet: one EfficientNet-Lite0 encoder, a light U-Net decoder for the lesion mask and a
classification head for normal / benign / malignant; one forward pass gives both.

The training model outputs logits (``mask_logits``, ``class_logits``); ``inference_model`` wraps
it with the sigmoid and a temperature-scaled softmax, and is what gets exported.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from busapp.training.effnet_lite import build_encoder, load_imagenet_weights

# Encoder layers up to and including this block stay frozen: the early filters are generic
# (edges, speckle-like texture) and freezing them makes a CPU epoch faster.
DEFAULT_FROZEN_BLOCKS = 1
DECODER_CHANNELS = (96, 64, 48, 32)


def _sep_block(x, filters: int, name: str):
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name + "_sep")(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def build_busnet(
    size: int = 224,
    pretrained: bool = True,
    frozen_blocks: int = DEFAULT_FROZEN_BLOCKS,
    weights_path: str | None = None,
    dropout: float = 0.3,
    lesion_pool: bool = False,
    mixstyle: bool = False,
    seed: int | None = None,
) -> keras.Model:
    encoder = build_encoder((size, size, 1), mixstyle=mixstyle, seed=seed)
    if pretrained:
        load_imagenet_weights(encoder, weights_path)
    for layer in encoder.layers:
        name = layer.name
        frozen = name.startswith("stem_") or (
            name.startswith("block") and int(name[5:].split("_")[0]) <= frozen_blocks
        )
        # BatchNorm statistics stay at their ImageNet values everywhere in the encoder: with
        # batches of 16 grey images, re-estimating them does more harm than good.
        if frozen or isinstance(layer, layers.BatchNormalization):
            layer.trainable = False

    inp = keras.Input((size, size, 1), name="image")
    f = encoder(inp)

    # Segmentation: from stride 32 up to stride 2, then a bilinear x2 to the input size.
    x = layers.Conv2D(DECODER_CHANNELS[0], 1, use_bias=False, name="dec_in")(f["head"])
    x = layers.ReLU(name="dec_in_relu")(layers.BatchNormalization(name="dec_in_bn")(x))
    for stride, ch in zip((16, 8, 4, 2), DECODER_CHANNELS, strict=True):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{stride}_up")(x)
        x = layers.Concatenate(name=f"dec{stride}_cat")([x, f[f"s{stride}"]])
        x = _sep_block(x, ch, f"dec{stride}")
    x = layers.Conv2D(1, 1, name="mask_logits_half")(x)
    mask_logits = layers.UpSampling2D(2, interpolation="bilinear", name="mask_logits")(x)

    # Classification: pooled head features; with ``lesion_pool`` also the features under the
    # predicted lesion and how sure the decoder is that there is one.
    c = layers.GlobalAveragePooling2D(name="cls_pool")(f["head"])
    if lesion_pool:
        c = layers.Concatenate(name="cls_cat")([c, LesionPool(name="cls_lesion_pool")(f["head"], mask_logits)])
    c = layers.Dropout(dropout, name="cls_dropout")(c)
    class_logits = layers.Dense(3, name="class_logits")(c)
    return keras.Model(inp, {"mask_logits": mask_logits, "class_logits": class_logits}, name="busnet")


@keras.saving.register_keras_serializable(package="busapp")
class LesionPool(layers.Layer):
    """Features averaged under the predicted lesion map, plus the map's peak and mean.

    Benign and malignant differ in the lesion (margin, shape, echo pattern), and a whole-image
    average dilutes a small lesion in surrounding tissue; the peak says whether there is a lesion
    at all, which is what separates normal images. The map is a constant here
    (``stop_gradient``): the classification loss must not bend the outline to suit itself.
    """

    def call(self, features, mask_logits):
        prob = ops.stop_gradient(ops.sigmoid(mask_logits))
        stride = mask_logits.shape[1] // features.shape[1]
        weight = ops.average_pool(prob, stride, stride)  # (N, h, w, 1), the features' grid
        total = ops.sum(weight, axis=(1, 2))
        pooled = ops.sum(features * weight, axis=(1, 2)) / (total + 1e-3)
        peak = ops.max(prob, axis=(1, 2))
        share = ops.mean(prob, axis=(1, 2))
        return ops.concatenate([pooled, peak, share], axis=-1)

    def compute_output_shape(self, features_shape, mask_logits_shape):
        return (features_shape[0], features_shape[-1] + 2)


@keras.saving.register_keras_serializable(package="busapp")
class HorizontalFlip(layers.Layer):
    """Mirror left-right (NHWC). A layer, not a Lambda, so the .keras file loads safely."""

    def call(self, x):
        return ops.flip(x, axis=2)


# The zoomed test-time view: the central 90% of the input, enlarged to the full input size.
ZOOM_IN_FRACTION = 0.9


def test_time_views(zoom_in: bool) -> list[str]:
    """The views each member sees, as a model card and a cross-validation report name them."""
    return ["image", "mirror"] + (["zoom_in"] if zoom_in else [])


def zoom_in_window(size: int) -> tuple[int, int]:
    """(offset, side) of the central square that the zoomed view enlarges."""
    side = round(size * ZOOM_IN_FRACTION)
    return (size - side) // 2, side


def _into_window(x, size: int):
    """A (N, side, side, C) map placed in ``zoom_in_window`` of a (N, size, size, C) one, zeros around."""
    o, side = zoom_in_window(size)
    return ops.pad(x, [[0, 0], [o, size - o - side], [o, size - o - side], [0, 0]])


@keras.saving.register_keras_serializable(package="busapp")
class ZoomIn(layers.Layer):
    """The central ``zoom_in_window`` of an NHWC batch, resized (bilinear) back to full size."""

    def call(self, x):
        size = x.shape[1]
        o, side = zoom_in_window(size)
        return ops.image.resize(x[:, o : o + side, o : o + side, :], (size, size), interpolation="bilinear")


@keras.saving.register_keras_serializable(package="busapp")
class ZoomOut(layers.Layer):
    """Undoes ``ZoomIn`` on a map: resized down to the window and placed in it, zeros around."""

    def call(self, x):
        size = x.shape[1]
        side = zoom_in_window(size)[1]
        return _into_window(ops.image.resize(x, (side, side), interpolation="bilinear"), size)


@keras.saving.register_keras_serializable(package="busapp")
class CoverageAverage(layers.Layer):
    """Average of mask maps where ``n_full`` views cover every pixel and the rest (zoomed views,
    mapped back by ``ZoomOut``) only their window: each pixel is averaged over the views that saw it."""

    def __init__(self, n_full: int, **kwargs):
        super().__init__(**kwargs)
        self.n_full = n_full

    def call(self, maps):
        full, zoomed = maps[: self.n_full], maps[self.n_full :]
        size = full[0].shape[1]
        side = zoom_in_window(size)[1]
        inside = _into_window(ops.ones((1, side, side, 1)), size)
        return ops.sum(ops.stack(maps), axis=0) / (len(full) + len(zoomed) * inside)

    def get_config(self):
        return {**super().get_config(), "n_full": self.n_full}


@keras.saving.register_keras_serializable(package="busapp")
class StackViews(layers.Layer):
    """Test-time views of an NHWC batch stacked along the batch axis: V inputs of N -> V*N."""

    def call(self, views):
        return ops.concatenate(views, axis=0)


@keras.saving.register_keras_serializable(package="busapp")
class SplitViews(layers.Layer):
    """Undoes ``StackViews`` on an output: V*N -> a list of V tensors of N, in view order."""

    def __init__(self, n_views: int, **kwargs):
        super().__init__(**kwargs)
        self.n_views = n_views

    def call(self, x):
        return ops.split(x, self.n_views, axis=0)

    def get_config(self):
        return {**super().get_config(), "n_views": self.n_views}


def inference_model(
    members: keras.Model | list[keras.Model], temperature: float = 1.0, flip_tta: bool = True,
    zoom_in: bool = False,
) -> keras.Model:
    """Probabilities instead of logits: {"mask": (N,H,W,1) sigmoid, "probs": (N,3) softmax(z / T)}.

    ``members``: one trained model or several (an ensemble of training runs); their logits are
    averaged. With ``flip_tta`` each also sees the mirror image (breast ultrasound has no
    preferred left-right orientation): steadier outlines and probabilities for more compute,
    which the latency budget allows. One graph, so the app still runs one model file.
    With ``zoom_in`` each member also sees
    ``ZoomIn``'s enlarged centre; its mask counts only inside that window.
    """
    members = members if isinstance(members, list) else [members]
    inp = keras.Input(members[0].input.shape[1:], name="image")
    views = [inp]
    if flip_tta:
        views.append(HorizontalFlip(name="flip_in")(inp))
    if zoom_in:
        views.append(ZoomIn(name="zoom_in")(inp))
    # All views go through each member as one batch: one call per member instead of one per view,
    # which LiteRT runs faster (37 -> 33 ms for 1.4.0's graph on this CPU) with the same per-image
    # arithmetic.
    batch = StackViews(name="views")(views) if len(views) > 1 else inp

    def per_view(x, name: str) -> list:
        return SplitViews(len(views), name=name)(x) if len(views) > 1 else [x]

    mask_terms, zoomed_masks, class_terms = [], [], []
    for i, member in enumerate(members):
        out = member(batch)
        masks = per_view(out["mask_logits"], f"split_mask_{i}")
        class_terms += per_view(out["class_logits"], f"split_class_{i}")
        mask_terms.append(masks[0])
        if flip_tta:
            mask_terms.append(HorizontalFlip(name=f"flip_out_{i}")(masks[1]))
        if zoom_in:
            zoomed_masks.append(ZoomOut(name=f"zoom_out_{i}")(masks[-1]))
    average = len(class_terms) > 1
    if zoomed_masks:
        mask_logits = CoverageAverage(len(mask_terms), name="avg_mask")(mask_terms + zoomed_masks)
    else:
        mask_logits = layers.Average(name="avg_mask")(mask_terms) if average else mask_terms[0]
    class_logits = layers.Average(name="avg_class")(class_terms) if average else class_terms[0]
    mask = layers.Activation("sigmoid", name="mask")(mask_logits)
    scaled = layers.Rescaling(1.0 / temperature, offset=0.0, name="temperature")(class_logits)
    probs = layers.Softmax(name="probs")(scaled)
    return keras.Model(inp, {"mask": mask, "probs": probs}, name="busnet_inference")
