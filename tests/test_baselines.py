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
