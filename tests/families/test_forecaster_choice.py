"""The forecaster ships the mean of its candidates (families/forecaster.py: choose), each written as Keras layers
that forecast what its reference does: the linear autoregression the linear baseline's numbers, AutoARIMA
statsforecast's own forecast from the same window; a candidate far worse on the validation windows (never the test
period) is left out."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import baselines
from pipelines.errors import PipelineError
from pipelines.families import forecaster
from tests.test_baselines import prepared


def recurrence(steps: int = 240) -> np.ndarray:
    omega = 2 * np.pi / 17
    y = [10.0, 10 + np.cos(omega)]
    for _ in range(steps - 2):
        y.append(2 * np.cos(omega) * (y[-1] - 10) - (y[-2] - 10) + 10)
    return np.array(y)


def workspace(s, split: str = "validation", rule: str = "mean"):
    ends = s.ends[split]
    batches = tf.data.Dataset.from_tensor_slices((baselines.windows(s, ends).astype(np.float32),
                                                  baselines.targets(s, ends).astype(np.float32))).batch(8)
    return SimpleNamespace(inputs=SimpleNamespace(validation=batches), data=SimpleNamespace(series=s),
                           config=SimpleNamespace(forecaster=rule))


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


def test_the_mean_of_the_candidates_ships_and_one_far_worse_on_validation_is_left_out(tmp_path, capsys):
    s = prepared(tmp_path, recurrence(), window=12, horizon=3)
    network = flat_network(s)
    chosen, why = forecaster.choose(network, workspace(s))
    scored = why["validation_mae"]
    assert scored["network"] > 5 and scored["linear"] < 1e-3 and why["validation_windows"] == len(s.ends["validation"])
    assert "network" not in why["members"] and "linear" in why["members"]  # 0 forecasts: thousands of times worse
    assert chosen.output_names == ["forecast"]  # what the exports' signature names
    ends = s.ends["test"]
    windows = baselines.windows(s, ends).astype(np.float32)
    np.testing.assert_allclose(chosen.predict(windows, verbose=0), baselines.targets(s, ends), atol=1e-2)
    models = forecaster.candidates(network, s)
    mean = np.mean([models[name].predict(windows, verbose=0) for name in why["members"]], axis=0)
    np.testing.assert_allclose(chosen.predict(windows, verbose=0), mean, rtol=1e-5, atol=1e-5)
    printed = capsys.readouterr().out
    assert (f"ships the mean of {', '.join(why['members'])}" if len(why["members"]) > 1 else
            f"ships the {why['members'][0]} forecaster alone") in printed


def test_a_network_whose_forecasts_are_not_numbers_is_left_out(tmp_path):
    s = prepared(tmp_path, recurrence(), window=12, horizon=3)
    window = keras.Input(shape=(s.window, len(s.columns)), name="window")
    nan = keras.layers.Dense(s.horizon, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
        float("nan")), name="forecast")(keras.layers.Flatten()(window))
    chosen, why = forecaster.choose(keras.Model(window, nan), workspace(s))
    assert "network" not in why["members"] and np.all(np.isfinite(chosen.predict(
        baselines.windows(s, s.ends["test"]).astype(np.float32), verbose=0)))


def test_without_validation_windows_the_mean_of_every_candidate_ships(tmp_path):
    s = prepared(tmp_path, recurrence(), window=12, horizon=3)
    empty = SimpleNamespace(inputs=SimpleNamespace(validation=tf.data.Dataset.from_tensor_slices(
        (np.zeros((0, 12, 1), np.float32), np.zeros((0, 3), np.float32))).batch(8)), data=SimpleNamespace(series=s),
        config=SimpleNamespace(forecaster="mean"))
    network = flat_network(s)
    chosen, why = forecaster.choose(network, empty)
    models = forecaster.candidates(network, s)
    assert why == {"forecaster": "mean", "members": list(models), "refit": ["arima"], "rule": "mean"}
    models.update(forecaster.refitted(list(models), s))
    windows = baselines.windows(s, s.ends["test"]).astype(np.float32)
    np.testing.assert_allclose(chosen.predict(windows, verbose=0), np.mean(
        [m.predict(windows, verbose=0) for m in models.values()], axis=0), rtol=1e-5, atol=1e-5)


def test_autoarima_in_keras_forecasts_what_statsforecast_does_from_the_same_window(tmp_path):
    """statsforecast's AutoARIMA, fitted on the train period, written as one Dense layer (baselines.window_weights):
    from any window its forecast is statsforecast's own `forward` from that window."""
    from statsforecast.models import AutoARIMA
    from tests import series as made
    s = prepared(tmp_path, made.seasonal(160), horizon=6)
    model = forecaster.statistical_model(s, "AutoARIMA", "arima")
    assert model is not None and model.output_names == ["forecast"]
    validation = s.periods[0][0]
    fitted = AutoARIMA(season_length=s.season).fit(s.values[0][:validation, 0].astype(np.float64))
    ends = s.ends["test"][::5]
    windows = baselines.windows(s, ends)
    theirs = np.stack([fitted.forward(y=w[:, 0].astype(np.float64), h=s.horizon)["mean"] for w in windows])
    np.testing.assert_allclose(model.predict(windows.astype(np.float32), verbose=0), theirs, rtol=1e-4,
                               atol=1e-4 * np.std(s.values[0]))
    assert "arima" in forecaster.candidates(flat_network(s), s)


def test_a_chosen_arima_ships_refit_on_every_row_and_is_judged_fitted_on_the_train_period(tmp_path):
    """AutoARIMA ships fitted on every row of the file, as statsforecast's user fits it: from any window it forecasts
    what statsforecast's own fit on every row does. Evaluate judges the mean with it fitted on the train period again
    (as_scored): the forecasts choose scored on validation, the test windows unseen by every member."""
    from statsforecast.models import AutoARIMA
    from tests import series as made
    shifted = made.seasonal(160)
    shifted[-40:] += 40  # a new level in the test period: a fit on every row sees it
    s = prepared(tmp_path, shifted, horizon=6)
    network = flat_network(s)
    chosen, why = forecaster.choose(network, workspace(s))
    assert why["members"] == ["linear", "arima"] and why["refit"] == ["arima"]  # the flat network left out
    windows = baselines.windows(s, s.ends["test"][::5])
    every_row = AutoARIMA(season_length=s.season).fit(s.values[0][:, 0].astype(np.float64))
    theirs = np.stack([every_row.forward(y=w[:, 0].astype(np.float64), h=s.horizon)["mean"] for w in windows])
    x, spread = windows.astype(np.float32), np.std(s.values[0][:, 0])
    shipped = chosen.get_layer("arima_forecaster").predict(x, verbose=0)
    np.testing.assert_allclose(shipped, theirs, rtol=1e-4, atol=1e-4 * spread)
    models = forecaster.candidates(network, s)
    assert np.max(np.abs(models["arima"].predict(x, verbose=0) - shipped)) > 1e-2 * spread  # another fit: not it
    work = SimpleNamespace(data=SimpleNamespace(series=s), chosen=lambda *keys: {k: why[k] for k in keys})
    chosen.save(tmp_path / "model.keras")  # evaluate reads it back: its members in the order choose named them
    scored = forecaster.as_scored(keras.models.load_model(tmp_path / "model.keras"), work).predict(x, verbose=0)
    mean = np.mean([models[name].predict(x, verbose=0) for name in why["members"]], axis=0)
    np.testing.assert_allclose(scored, mean, rtol=1e-5, atol=1e-5 * spread)
    unchanged = SimpleNamespace(data=work.data, chosen=lambda *keys: {"members": why["members"], "refit": []})
    assert forecaster.as_scored(chosen, unchanged) is chosen


def test_forecaster_arima_ships_the_refit_autoarima_alone_for_one_series_without_covariates(tmp_path):
    """--forecaster=arima: AutoARIMA alone when validation keeps it, refit on every row; the network and the linear
    AR are still scored. With a covariate, which its weights cannot read, the mean of the candidates ships."""
    from tests import series as made
    s = prepared(tmp_path, made.seasonal(160), horizon=6)
    chosen, why = forecaster.choose(flat_network(s), workspace(s, rule="arima"))
    assert why["forecaster"] == "arima" and why["members"] == ["arima"] and why["refit"] == ["arima"]
    assert set(why["validation_mae"]) == {"network", "linear", "arima", "shipped"} and why["rule"] == "arima"
    windows = baselines.windows(s, s.ends["test"][::5]).astype(np.float32)
    refit = forecaster.refitted(["arima"], s)["arima"]
    np.testing.assert_allclose(chosen.predict(windows, verbose=0), refit.predict(windows, verbose=0), rtol=1e-6)
    lines = "\n".join(forecaster.report_choice({**why, "forecaster_rule": "arima", "validation_windows": 0}))
    assert "the arima forecaster alone" in lines and "--forecaster=arima" in lines
    covariate = SimpleNamespace(**{**vars(s), "columns": (*s.columns, "price")})
    assert forecaster.by_rule(["network", "linear", "arima"], "arima", covariate) == ["network", "linear", "arima"]
    assert forecaster.by_rule(["network", "linear"], "arima", s) == ["network", "linear"]  # validation left it out
    assert forecaster.by_rule(["network", "linear", "arima"], "mean", s) == ["network", "linear", "arima"]


def test_a_model_that_is_not_affine_in_the_window_is_no_candidate(tmp_path):
    """A multiplicative ETS (error and season scaled by the level) is not affine in its window; several series are
    not one weight matrix."""
    from tests import series as made
    s = prepared(tmp_path, made.seasonal(160), horizon=6)
    assert baselines.window_weights(s, "AutoETS", model="MNM") is None
    assert baselines.window_weights(s, "AutoETS", model="ANA") is not None  # additive: affine
    assert baselines.window_weights(SimpleNamespace(values=[s.values[0]] * 2), "AutoARIMA") is None


def windows_spread_by(spreads) -> np.ndarray:
    """Two-step windows [-a, a] of one column: each one's spread (standard deviation) is its a."""
    a = np.asarray(spreads, np.float32)
    return np.stack([-a, a], axis=1)[..., None]


def test_intervals_are_scaled_by_the_window_judged_on_validation_and_shipped_from_every_held_out_window():
    """The flat network forecasts 0. Nine validation windows of spreads 1 … 9 miss by twice their spread; ten test
    windows of spreads 10 … 19 by 1.5 times theirs. The multiple judged is 2 at every level (the validation errors
    over their spreads), which covers every test error; the multiple shipped at 80% is the 16th of all nineteen
    (ceil(20 · 0.8) = 16: ten 1.5s, then nine 2s), at 50% the 10th (1.5). A window's half-width is its spread times
    the multiple; a flat one's spread is the floor, a tenth of the validation windows' median spread (5)."""
    s = SimpleNamespace(window=2, columns=("y",), horizon=2, season=1)
    spreads, tested = np.arange(1.0, 10.0), np.arange(10.0, 20.0)
    errors = np.repeat(2 * spreads[:, None], 2, axis=1).astype(np.float32)
    truth = np.repeat(1.5 * tested[:, None], 2, axis=1)
    work = SimpleNamespace(data=SimpleNamespace(series=s), inputs=SimpleNamespace(
        validation=tf.data.Dataset.from_tensor_slices((windows_spread_by(spreads), errors)).batch(4),
        test=tf.data.Dataset.from_tensor_slices((windows_spread_by(tested), truth)).batch(4)))
    found = forecaster.intervals(flat_network(s), work, np.zeros_like(truth), truth)
    assert found["test_interval_coverage"] == {"0.5": 1.0, "0.8": 1.0, "0.9": 1.0, "0.95": 1.0}
    assert found["interval_validation_windows"] == 9 and found["interval_windows"] == 19
    shipped = forecaster.Intervals.from_metrics(found)
    assert shipped.multiples["0.8"] == [2.0, 2.0] and shipped.multiples["0.5"] == [1.5, 1.5]
    assert shipped.floor == pytest.approx(0.5) and shipped.steps == 2
    np.testing.assert_allclose(shipped.halfwidths(windows_spread_by([4.0, 0.0]), "0.8"), [[8.0, 8.0], [1.0, 1.0]])


def test_the_window_spread_is_the_last_two_seasons_and_intervals_read_back_or_are_none():
    """A season of 4 in a window of 12: the spread is over the last 8 steps (a step before them changes nothing);
    metrics.json without intervals (or damaged) has none."""
    steps = forecaster.spread_steps(SimpleNamespace(window=12, season=4))
    assert steps == 8 and forecaster.spread_steps(SimpleNamespace(window=6, season=4)) == 6
    assert forecaster.spread_steps(SimpleNamespace(window=6, season=1)) == 6
    window = np.r_[np.full(4, 100.0), np.tile([1.0, -1.0], 4)][None]
    assert forecaster.Intervals.spread_of(window, steps, 0.0) == pytest.approx([1.0])
    assert forecaster.Intervals.from_metrics({}) is None
    assert forecaster.Intervals.from_metrics({"interval": {"multiples": {"0.8": ["x"]}}}) is None
    with pytest.raises(PipelineError, match="before they scaled with each window's spread: run dlpipe "
                                            "--stages=evaluate --force"):
        forecaster.Intervals.from_metrics({"interval_halfwidths": {"0.8": [1.0]}})  # an older run's


def test_flat_windows_take_the_floor_from_the_windows_that_move():
    """Six flat validation windows of nine: the floor is a tenth of the median spread of the three others (2, 4, 6),
    not of all nine (0)."""
    s = SimpleNamespace(window=2, columns=("y",), horizon=1, season=1)
    spreads = np.array([0.0] * 6 + [2.0, 4.0, 6.0])
    work = SimpleNamespace(data=SimpleNamespace(series=s), inputs=SimpleNamespace(
        validation=tf.data.Dataset.from_tensor_slices((windows_spread_by(spreads), np.ones((9, 1), np.float32))),
        test=tf.data.Dataset.from_tensor_slices((windows_spread_by([1.0]), np.ones((1, 1), np.float32)))))
    work.inputs.validation, work.inputs.test = work.inputs.validation.batch(4), work.inputs.test.batch(4)
    found = forecaster.intervals(flat_network(s), work, np.zeros((1, 1)), np.ones((1, 1)))
    assert forecaster.Intervals.from_metrics(found).floor == pytest.approx(0.4)
