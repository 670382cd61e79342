"""The lesion-pooled classifier: what it computes, and that it survives .keras and LiteRT export."""

import numpy as np
import pytest


def test_lesion_pool_averages_features_under_the_mask():
    pytest.importorskip("keras")
    from busapp.training.model import LesionPool

    features = np.zeros((1, 2, 2, 3), np.float32)
    features[0, 0, 0] = [1, 2, 3]
    features[0, 1, 1] = [5, 5, 5]
    logits = np.full((1, 8, 8, 1), -20.0, np.float32)
    logits[0, :4, :4] = 20.0  # lesion exactly over the top-left feature cell
    out = np.asarray(LesionPool()(features, logits))
    assert out.shape == (1, 5)
    np.testing.assert_allclose(out[0, :3], [1, 2, 3], rtol=1e-3)  # only the cell under the lesion
    assert out[0, 3] == pytest.approx(1.0)  # peak
    assert out[0, 4] == pytest.approx(0.25, abs=1e-4)  # share of the image


@pytest.mark.slow
def test_lesion_pool_model_exports_with_litert_parity(tmp_path):
    pytest.importorskip("keras")
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from busapp.training.export import export_tflite, save_keras
    from busapp.training.model import build_busnet, inference_model

    keras.utils.set_random_seed(0)
    final = inference_model([build_busnet(96, pretrained=False, lesion_pool=True)], temperature=1.3)
    save_keras(final, tmp_path / "m.keras")
    export_tflite(final, tmp_path / "m.tflite")
    reference = keras.saving.load_model(tmp_path / "m.keras")

    x = np.random.default_rng(1).normal(0, 0.5, (1, 96, 96, 1)).astype(np.float32)
    it = Interpreter(str(tmp_path / "m.tflite"))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    lite = {tuple(d["shape"]): it.get_tensor(d["index"]) for d in it.get_output_details()}
    ref = reference(x)
    np.testing.assert_allclose(lite[(1, 3)], np.asarray(ref["probs"]), atol=1e-4)
    np.testing.assert_allclose(lite[(1, 96, 96, 1)], np.asarray(ref["mask"]), atol=1e-4)
