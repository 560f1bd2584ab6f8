"""The window a forecaster reads: scaling inside the model, the level taken out and added back, float16-safe."""

import keras
import numpy as np
import pytest

from models.sequence import FORECAST, WINDOW, FromLevel, Standardize, Unstandardize, Window

SCALE = {"mean": [4e5, 2.0], "std": [1e5, 0.5]}  # a label in the hundreds of thousands, a small covariate


def test_standardize_and_unstandardize_are_inverse_and_their_constants_fit_float16():
    x = np.array([[[3e5, 1.5], [5e5, 2.5]]], np.float32)
    z = keras.ops.convert_to_numpy(Standardize(SCALE["mean"], SCALE["std"])(x))
    np.testing.assert_allclose(z, [[[-1, -1], [1, 1]]], atol=1e-5)
    back = keras.ops.convert_to_numpy(Unstandardize(SCALE["mean"][0], SCALE["std"][0])(z[..., 0]))
    np.testing.assert_allclose(back, x[..., 0], rtol=1e-6)
    # The constants a float16 file would store: 1/√std and mean/std (Standardize), mean/std and √std (Unstandardize).
    for constant in (SCALE["std"][0] ** -0.5, SCALE["mean"][0] / SCALE["std"][0], SCALE["std"][0] ** 0.5):
        assert np.isfinite(np.float16(constant)) and abs(np.float16(constant) / constant - 1) < 1e-3


def test_the_label_is_made_relative_to_the_windows_last_value_and_covariates_are_untouched():
    x = np.array([[[1.0, 7.0], [3.0, 8.0], [4.0, 9.0]]], np.float32)
    relative, level = (keras.ops.convert_to_numpy(t) for t in FromLevel()(x))
    np.testing.assert_array_equal(level, [[4.0]])
    np.testing.assert_array_equal(relative, [[[-3.0, 7.0], [-1.0, 8.0], [0.0, 9.0]]])


def test_a_body_that_outputs_zero_is_the_naive_forecast_in_the_labels_units():
    window = Window((5, 2), SCALE)
    model = window.forecast(keras.layers.Flatten()(window.relative), horizon=3, name="naive")
    steps = model.get_layer("steps")
    steps.set_weights([np.zeros_like(w) for w in steps.get_weights()])
    x = np.random.default_rng(0).normal(4e5, 1e5, (4, 5, 2)).astype(np.float32)
    forecast = model.predict(x, verbose=0)
    np.testing.assert_allclose(forecast, np.repeat(x[:, -1:, 0], 3, axis=1), rtol=1e-6)
    assert model.inputs[0].name == WINDOW and model.layers[-1].name == FORECAST  # the signature's names


@pytest.mark.parametrize("layer", [Standardize([1.0], [2.0]), Unstandardize(1.0, 2.0)])
def test_the_scaling_layers_save_their_constants(layer):
    again = type(layer).from_config(layer.get_config())
    assert (again.mean, again.std) == (layer.mean, layer.std)


@pytest.mark.parametrize("builder,args", [
    ("models.dense:build_dense_classifier", {"hidden_units": (8,)}),
    ("models.conv:build_conv_classifier", {"conv_filters": (4, 8)}),
    ("models.recurrent:build_recurrent_classifier", {"rnn_units": 4}),
    ("models.transformer:build_transformer_classifier", {"model_width": 8, "attention_heads": 2,
                                                         "encoder_layers": 1}),
])
@pytest.mark.parametrize("each", [False, True])
def test_every_task_classifies_a_series_of_raw_values_into_logits(builder, args, each):
    import importlib
    module, name = builder.split(":")
    scale = {"mean": [5.0], "std": [2.0], "classify": True, "each": each}
    model = getattr(importlib.import_module(module), name)((30, 1), 3, series_scale=scale, **args)
    assert model.inputs[0].name == WINDOW and model.layers[-1].name == "logits"
    x = np.random.default_rng(1).normal(5, 2, (4, 30, 1)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == (4, 3)
    # The same series shifted and stretched is the same series to a model that scales each by its own.
    shifted = model.predict(100 + 10 * x, verbose=0)
    assert np.allclose(shifted, model.predict(x, verbose=0), atol=1e-3) == each
