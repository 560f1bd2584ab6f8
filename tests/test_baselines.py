"""The forecasts a forecaster must beat (pipelines/baselines.py), each on a series whose best forecast is known:
seasonal naive repeats a pure season exactly, drift continues a straight line, naive holds a flat tail, and the
linear autoregression learns a linear recurrence."""

import numpy as np
import pytest

from pipelines import baselines
from pipelines.data import series
from tests import series as made


def prepared(tmp_path, values, window=24, horizon=6):
    path = made.write(tmp_path / "s.csv", ["month", "y"], zip(made.months(len(values)), values))
    return series.prepare(path, time_column="month", label_column="y", series_id_column=None, window=window,
                          horizon=horizon, season=None, test_split=0.2, validation_split=0.1)


def errors(s) -> dict[str, float]:
    ends = s.ends["test"]
    truth = baselines.targets(s, ends)
    return {name: float(np.abs(f - truth).max()) for name, f in baselines.forecasts(s, ends).items()}


def test_each_baseline_is_exact_where_its_rule_is_the_truth(tmp_path):
    season = np.tile([3.0, 7, 1, 9, 4, 6, 2, 8, 5, 10, 0, 11], 20)  # a pure monthly season
    assert errors(prepared(tmp_path, season))["seasonal_naive"] == pytest.approx(0, abs=1e-6)
    line = 5 + 0.5 * np.arange(240)  # a straight line: drift's average step is its slope
    assert errors(prepared(tmp_path, line))["drift"] == pytest.approx(0, abs=1e-4)
    walk = np.cumsum(np.random.default_rng(0).normal(size=240))
    found = errors(prepared(tmp_path, walk))  # nothing beats the last value by rule on a random walk, but none is 0
    assert min(found.values()) > 0 and set(found) == {b.name for b in baselines.BASELINES}


def test_the_linear_autoregression_learns_a_linear_recurrence(tmp_path):
    omega = 2 * np.pi / 17  # a cycle of 17 months: no season the other baselines know
    y = [10.0, 10 + np.cos(omega)]
    for _ in range(238):
        y.append(2 * np.cos(omega) * (y[-1] - 10) - (y[-2] - 10) + 10)  # y_t − 10 = 2cos ω (y_{t−1} − 10) − …
    found = errors(prepared(tmp_path, np.array(y), window=12, horizon=3))
    assert found["linear"] < 1e-3 and found["naive"] > 0.5 and found["seasonal_naive"] > 0.5


def test_statsforecast_models_are_fitted_on_the_train_period_and_forecast_as_statsforecast_does(tmp_path):
    from statsforecast.models import AutoETS
    values = made.seasonal(240)
    s = prepared(tmp_path, np.round(values, 3), horizon=12)
    validation = s.periods[0][0]
    train = s.values[0][:validation, 0].astype(np.float64)
    end = np.array([[0, validation - 1]])  # a window ending where the train period ends: exactly its forecast
    ours = baselines.statsforecast_model("AutoETS")(s)(end)
    np.testing.assert_allclose(ours[0], AutoETS(season_length=12).fit(train).predict(h=12)["mean"], rtol=1e-9)
    found = errors(s)
    assert {"autoets", "autoarima", "autotheta"} <= set(found)
    assert found["autoets"] < found["naive"]  # a trend and a season: the reference model sees both


def test_a_model_that_cannot_fit_the_series_is_left_out_with_a_note(tmp_path, capsys, monkeypatch):
    def broken(series):
        raise ValueError("season longer than the series")
    monkeypatch.setattr(baselines, "BASELINES", (*baselines.BASELINES[:1], baselines.Baseline("broken", broken)))
    s = prepared(tmp_path, np.round(made.seasonal(120), 3))
    assert set(baselines.forecasts(s, s.ends["test"])) == {"naive"}
    assert "note: the broken baseline cannot fit these series (ValueError: season longer" in capsys.readouterr().out
