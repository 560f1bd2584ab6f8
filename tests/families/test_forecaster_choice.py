"""The forecaster ships the candidate that forecasts the validation windows best (families/forecaster.py: choose):
the linear autoregression as Keras layers forecasts exactly what the linear baseline does, and the choice is made
on validation windows, never on the test period."""

from types import SimpleNamespace

import keras
import numpy as np
import tensorflow as tf

from pipelines import baselines
from pipelines.families import forecaster
from tests.test_baselines import prepared


def recurrence(steps: int = 240) -> np.ndarray:
    omega = 2 * np.pi / 17
    y = [10.0, 10 + np.cos(omega)]
    for _ in range(steps - 2):
        y.append(2 * np.cos(omega) * (y[-1] - 10) - (y[-2] - 10) + 10)
    return np.array(y)


def workspace(s, split: str = "validation"):
    ends = s.ends[split]
    batches = tf.data.Dataset.from_tensor_slices((baselines.windows(s, ends).astype(np.float32),
                                                  baselines.targets(s, ends).astype(np.float32))).batch(8)
    return SimpleNamespace(inputs=SimpleNamespace(validation=batches), data=SimpleNamespace(series=s))


def flat_network(s) -> keras.Model:
    """A network that has learned nothing: it forecasts 0 whatever the window."""
    window = keras.Input(shape=(s.window, len(s.columns)), name="window")
    forecast = keras.layers.Dense(s.horizon, kernel_initializer="zeros", name="forecast")(
        keras.layers.Flatten()(window))
    return keras.Model(window, forecast)


def test_the_linear_candidate_in_keras_forecasts_what_the_linear_baseline_does(tmp_path):
    from tests import series as made
    s = prepared(tmp_path, np.round(made.seasonal(), 3), horizon=12)
    ends = s.ends["test"]
    keras_forecast = forecaster.linear_model(s).predict(baselines.windows(s, ends).astype(np.float32), verbose=0)
    np.testing.assert_allclose(keras_forecast, baselines.linear(s)(ends), rtol=1e-4, atol=1e-3)


def test_the_candidate_with_the_smallest_validation_error_ships(tmp_path, capsys):
    s = prepared(tmp_path, recurrence(), window=12, horizon=3)
    network = flat_network(s)
    chosen, why = forecaster.choose(network, workspace(s))
    assert why["forecaster"] == "linear" and why["validation_mae"]["linear"] < 1e-3
    assert why["validation_mae"]["network"] > 5 and why["validation_windows"] == len(s.ends["validation"])
    assert chosen.output_names == ["forecast"]  # what the exports' signature names
    ends = s.ends["test"]
    np.testing.assert_allclose(chosen.predict(baselines.windows(s, ends).astype(np.float32), verbose=0),
                               baselines.targets(s, ends), atol=1e-2)
    mean = forecaster.candidates(network, s)["mean"]
    windows = baselines.windows(s, ends).astype(np.float32)
    np.testing.assert_allclose(mean.predict(windows, verbose=0), chosen.predict(windows, verbose=0) / 2, rtol=1e-5)
    assert "ships the linear forecaster" in capsys.readouterr().out


def test_without_validation_windows_the_network_ships(tmp_path):
    s = prepared(tmp_path, recurrence(), window=12, horizon=3)
    empty = SimpleNamespace(inputs=SimpleNamespace(validation=tf.data.Dataset.from_tensor_slices(
        (np.zeros((0, 12, 1), np.float32), np.zeros((0, 3), np.float32))).batch(8)), data=SimpleNamespace(series=s))
    network = flat_network(s)
    assert forecaster.choose(network, empty) == (network, {})
