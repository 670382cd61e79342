"""The zoomed test-time view: its geometry, its coverage-weighted mask average, that the numpy
path (cross-validation) computes what the exported graph computes, and LiteRT parity."""

import numpy as np
import pytest

pytest.importorskip("keras")


def test_zoom_window_is_central_and_ninety_percent():
    from busapp.training.model import zoom_in_window

    assert zoom_in_window(256) == (13, 230)
    o, side = zoom_in_window(64)
    assert side == 58 and o == 3 and o + side + o <= 64


def test_zoom_in_then_out_returns_the_centre_and_zeros_around():
    from busapp.training.model import ZoomIn, ZoomOut, zoom_in_window

    # A smooth ramp survives the two bilinear resizes almost exactly; a wrong offset would not.
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    x = (xx + 2 * yy)[None, :, :, None] / 64
    back = np.asarray(ZoomOut()(ZoomIn()(x)))
    o, side = zoom_in_window(64)
    inner = slice(o + 2, o + side - 2)  # borders blur a little
    np.testing.assert_allclose(back[0, inner, inner], x[0, inner, inner], atol=0.03)
    assert not back[0, :o].any() and not back[0, :, o + side :].any()
    # The zoomed view really is enlarged: its centre row spans less of the ramp than the input's.
    zoomed = np.asarray(ZoomIn()(x))
    assert np.ptp(zoomed[0, 32, :, 0]) < np.ptp(x[0, 32, :, 0])


def test_coverage_average_counts_the_zoomed_view_only_inside_its_window():
    from busapp.training.model import CoverageAverage, zoom_in_window

    a, b = np.full((1, 64, 64, 1), 1.0, np.float32), np.full((1, 64, 64, 1), 3.0, np.float32)
    o, side = zoom_in_window(64)
    z = np.zeros((1, 64, 64, 1), np.float32)
    z[:, o : o + side, o : o + side] = 8.0
    out = np.asarray(CoverageAverage(2)([a, b, z]))
    assert out[0, 0, 0, 0] == pytest.approx(2.0)  # outside: (1 + 3) / 2
    assert out[0, 32, 32, 0] == pytest.approx(4.0)  # inside: (1 + 3 + 8) / 3


@pytest.mark.slow
def test_graph_with_zoom_matches_member_outputs_and_litert(tmp_path):
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from busapp.training.export import export_tflite, save_keras
    from busapp.training.members import member_outputs
    from busapp.training.model import build_busnet, inference_model

    keras.utils.set_random_seed(0)
    members = [build_busnet(64, pretrained=False), build_busnet(64, pretrained=False)]
    members[1].name = "busnet_1"
    final = inference_model(members, temperature=1.0, zoom_in=True)
    plain = inference_model(members, temperature=1.0)
    x = np.random.default_rng(1).normal(0, 0.5, (2, 64, 64, 1)).astype(np.float32)

    # Cross-validation's numpy path (member_outputs, members averaged) = the graph, with and
    # without the zoomed view: the views are stacked into one batch per member and split back,
    # so a batch of two images also checks that they come back in order.
    one_view = inference_model(members, temperature=1.0, flip_tta=False)
    for graph_model, zoom, mirror in ((final, True, True), (plain, False, True), (one_view, False, False)):
        outs = [member_outputs(m, x, zoom_in=zoom, mirror=mirror) for m in members]
        mask_logits, logits = (np.mean([o[i] for o in outs], axis=0) for i in (0, 1))
        graph = graph_model(x)
        np.testing.assert_allclose(np.asarray(graph["mask"]), 1 / (1 + np.exp(-mask_logits)), atol=1e-5)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(np.asarray(graph["probs"]), e / e.sum(axis=1, keepdims=True), atol=1e-5)
    graph = final(x)
    assert np.abs(np.asarray(graph["mask"]) - np.asarray(plain(x)["mask"])).max() > 1e-4  # the view counts
    assert np.abs(np.asarray(one_view(x)["mask"]) - np.asarray(plain(x)["mask"])).max() > 1e-4  # so does the mirror

    save_keras(final, tmp_path / "m.keras")
    export_tflite(final, tmp_path / "m.tflite")
    reference = keras.saving.load_model(tmp_path / "m.keras")
    it = Interpreter(str(tmp_path / "m.tflite"))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x[:1])
    it.invoke()
    lite = {tuple(d["shape"]): it.get_tensor(d["index"]) for d in it.get_output_details()}
    ref = reference(x[:1])
    np.testing.assert_allclose(lite[(1, 3)], np.asarray(ref["probs"]), atol=1e-4)
    np.testing.assert_allclose(lite[(1, 64, 64, 1)], np.asarray(ref["mask"]), atol=1e-4)
