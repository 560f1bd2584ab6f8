"""The forecasts any forecaster must beat, each a record of one interface (darts' baselines are models like any
other): `fit(series)` learns what it needs from the train periods and returns a forecaster, which gives, for the
windows ending at `ends` ((series, last step) pairs), the next `horizon` values, [n, horizon], from what each
window's end knows. The forecaster family scores every one on the network's test windows (families/forecaster.py);
adding one (statsforecast's AutoETS, a median of seeds) is one record in BASELINES.

- naive: the last value, repeated;
- seasonal naive: the value one season before each step ahead (the last season, repeated);
- drift: the last value plus the series' average step so far, times the steps ahead;
- linear: a linear autoregression on the same windows as the network (every column of every step), fitted in closed
  form (least squares) on the train windows;
- autoets, autoarima, autotheta: statsforecast's AutoETS, AutoARIMA and AutoTheta, what a forecaster compares with
  first, each fitted on every series' train period and applied at each window's end (statsforecast_model).
"""

import dataclasses
from typing import Callable

import numpy as np

MAX_LINEAR_WINDOWS = 200_000  # the linear baseline is fitted on at most this many train windows (evenly spaced)

Forecast = Callable[[np.ndarray], np.ndarray]  # window ends [n, 2] → forecasts [n, horizon]


@dataclasses.dataclass(frozen=True)
class Baseline:
    name: str                       # baseline_<name>_<metric> in metrics.json
    fit: Callable[..., Forecast]    # (series: data/series.Series) → its forecaster


def windows(series, ends: np.ndarray) -> np.ndarray:
    """The windows ending at `ends` ((series, last step) pairs), [n, window, columns]."""
    w = series.window
    return np.stack([series.values[i][t - w + 1:t + 1] for i, t in ends]) if len(ends) else \
        np.zeros((0, w, len(series.columns)), np.float32)


def targets(series, ends: np.ndarray) -> np.ndarray:
    """What followed each window: the label's next `horizon` values, [n, horizon]."""
    return np.stack([series.values[i][t + 1:t + 1 + series.horizon, 0] for i, t in ends]).astype(np.float64)


def _per_window(series, rule: Callable[[np.ndarray, int, np.ndarray], np.ndarray]) -> Forecast:
    """A forecaster from a rule (the label up to and past the window's end, the end, the steps ahead) → forecast."""
    steps = np.arange(1, series.horizon + 1)

    def forecast(ends: np.ndarray) -> np.ndarray:
        rows = [rule(series.values[i][:, 0].astype(np.float64), t, steps) for i, t in ends]
        return np.array(rows).reshape(len(ends), series.horizon)
    return forecast


def naive(series) -> Forecast:
    return _per_window(series, lambda y, t, steps: np.full(len(steps), y[t]))


def seasonal_naive(series) -> Forecast:
    m = series.season
    # The same step of the last season known at t.
    return _per_window(series, lambda y, t, steps: y[np.maximum(t + steps - m * np.ceil(steps / m).astype(int), 0)])


def drift(series) -> Forecast:
    return _per_window(series, lambda y, t, steps: y[t] + steps * ((y[t] - y[0]) / t if t else 0.0))


def linear_weights(series) -> np.ndarray:
    """Least squares from a window, standardised per column (series.scale()) and flattened, and 1 to the next
    `horizon` values, fitted on (at most MAX_LINEAR_WINDOWS evenly spaced) train windows: [window · columns + 1,
    horizon]. The forecaster family can ship it as a Dense layer (families/forecaster.py: linear_model)."""
    ends = series.ends["train"]
    ends = ends[np.linspace(0, len(ends) - 1, min(len(ends), MAX_LINEAR_WINDOWS)).astype(int)]
    weights, *_ = np.linalg.lstsq(_linear_design(series, windows(series, ends)), targets(series, ends), rcond=None)
    return weights


def _linear_design(series, x: np.ndarray) -> np.ndarray:
    scale = series.scale()
    flat = ((x - np.array(scale["mean"])) / np.array(scale["std"])).reshape(len(x), -1)
    return np.hstack([flat, np.ones((len(x), 1))])


def linear(series) -> Forecast:
    """Least squares from a flattened window (and 1) to the next `horizon` values (linear_weights)."""
    weights = linear_weights(series)
    return lambda ends: _linear_design(series, windows(series, ends)) @ weights


def fit_statsforecast(model_name: str, series, values: np.ndarray, **options):
    """statsforecast's `model_name` with the series' season (and `options`), fitted on `values`."""
    from statsforecast import models  # only a forecaster needs it, and it takes a second to import
    return getattr(models, model_name)(season_length=series.season, **options).fit(values)


def statsforecast_model(model: str) -> Callable[..., Forecast]:
    """statsforecast's `model` (AutoETS, AutoARIMA, AutoTheta: the field's reference implementations), fitted on each
    series' train period alone, with its season; then, at each window's end, the fitted model applied to the history
    up to it (`forward`: its parameters kept, its states run over the longer history), as a rolling origin."""
    def fit(series) -> Forecast:
        fitted = [fit_statsforecast(model, series, values[:validation, 0].astype(np.float64))
                  for values, (validation, _) in zip(series.values, series.periods)]

        def forecast(ends: np.ndarray) -> np.ndarray:
            rows = [fitted[i].forward(y=series.values[i][:t + 1, 0].astype(np.float64), h=series.horizon)["mean"]
                    for i, t in ends]
            return np.array(rows, np.float64).reshape(len(ends), series.horizon)
        return forecast
    return fit


def window_weights(series, model_name: str, every_row: bool = False,
                   **options) -> tuple[np.ndarray, np.ndarray] | None:
    """statsforecast's `model_name` (with `options`) fitted on the train period of the one series (`every_row`: on all
    of it), as the affine map it is from the last `window` values of the label to their forecast (AR, ARIMA, additive
    ETS: linear in their history once their parameters are fitted): weights [window, horizon] and bias [horizon], read
    off its forecasts from the last window it was fitted on and from that window with each step moved by one standard
    deviation (not from zeros: statsforecast forecasts a constant window as that constant), and checked on the first
    window. None when the map is not affine (a multiplicative model), the model cannot forecast from a window this
    short, or the data hold several series (one weight matrix cannot be each one's model)."""
    if len(series.values) != 1:
        return None
    values, (validation, _) = series.values[0][:, 0].astype(np.float64), series.periods[0]
    rows = len(values) if every_row else validation
    w, spread = series.window, float(np.std(values[:rows])) or 1.0
    try:
        fitted = fit_statsforecast(model_name, series, values[:rows], **options)

        def forecast(window):
            return np.asarray(fitted.forward(y=window, h=series.horizon)["mean"], np.float64)
        last, first = values[rows - w:rows], values[:w]
        base = forecast(last)
        weights = np.stack([(forecast(last + spread * unit) - base) / spread for unit in np.eye(w)])
        bias = base - last @ weights
        affine = np.allclose(first @ weights + bias, forecast(first), rtol=1e-6, atol=1e-6 * spread)
    except Exception:  # statsforecast raises assorted errors for a series or window its model cannot take
        return None
    return (weights, bias) if affine and np.all(np.isfinite(weights)) and np.all(np.isfinite(bias)) else None


BASELINES: tuple[Baseline, ...] = (
    Baseline("naive", naive), Baseline("seasonal_naive", seasonal_naive), Baseline("drift", drift),
    Baseline("linear", linear), Baseline("autoets", statsforecast_model("AutoETS")),
    Baseline("autoarima", statsforecast_model("AutoARIMA")), Baseline("autotheta", statsforecast_model("AutoTheta")))


def forecasts(series, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Each baseline's forecasts for the windows ending at `ends`, [n, horizon], by name; one that cannot fit the
    series (a season longer than a train period) is left out with a note."""
    found = {}
    for baseline in BASELINES:
        try:
            forecast = baseline.fit(series)(ends)
        except Exception as e:  # statsforecast raises assorted errors for a series its model cannot fit
            print(f"note: the {baseline.name} baseline cannot fit these series ({type(e).__name__}: "
                  f"{str(e)[:120]}): left out of the comparison", flush=True)
            continue
        if np.all(np.isfinite(forecast)):
            found[baseline.name] = forecast
    return found
