import numpy as np

from models.dense import build_dense_classifier


def test_default_is_the_seed_network_784_128_10():
    model = build_dense_classifier((28, 28, 1), 10)
    assert [layer.name for layer in model.layers] == ["image", "rescale", "flatten", "hidden_0", "logits"]
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10
    assert model.output_shape == (None, 10)


def test_hidden_units_and_dropout_shape_the_stack():
    model = build_dense_classifier((32, 32, 3), 5, hidden_units=(64, 32), dropout=0.25)
    dense = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    assert [layer.units for layer in dense] == [64, 32]
    assert [layer.rate for layer in model.layers if layer.name.startswith("dropout_")] == [0.25, 0.25]
    assert model.output_shape == (None, 5)


def test_model_takes_raw_pixels_and_rescales_them_itself():
    model = build_dense_classifier((2, 2, 1), 3)
    rescaled = model.get_layer("rescale")(np.full((1, 2, 2, 1), 255.0, dtype="float32"))
    np.testing.assert_allclose(rescaled, 1.0)
