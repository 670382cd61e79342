"""Export the inference model to LiteRT (.tflite) next to its Keras reference (.keras)."""

from __future__ import annotations

from pathlib import Path

import keras

from busapp.core.atomic import write_bytes_atomic


def export_tflite(model: keras.Model, path: Path) -> None:
    """A batch-1, float32 LiteRT model with one signature ``serving_default``: image -> mask, probs.

    Float32 on purpose: dynamic-range quantisation made U-Nets 4-5x slower on this CPU, and the
    parity test against the Keras file needs float32 to agree within 1e-4.
    """
    import tempfile

    import tensorflow as tf

    size = model.input.shape[1]
    # Through a SavedModel: converting a tf.function over Keras 3 variables directly leaves
    # READ_VARIABLE ops in the flatbuffer (NaN outputs); the SavedModel path freezes them.
    with tempfile.TemporaryDirectory() as tmpdir:
        model.export(
            tmpdir,
            format="tf_saved_model",
            input_signature=[keras.InputSpec(shape=(1, size, size, 1), dtype="float32", name="image")],
            verbose=False,
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(tmpdir)
        converter.optimizations = []
        data = converter.convert()
    write_bytes_atomic(path, data)


def save_keras(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)
