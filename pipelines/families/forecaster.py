"""The forecaster family: a series' next `horizon` values from a window of its past, judged on the test windows
against the baselines any forecaster must beat, computed in the same run on the same windows.

The baselines are pipelines/baselines.py's records (naive, seasonal naive, drift, a linear autoregression,
statsforecast's AutoETS, AutoARIMA and AutoTheta), each a [windows, horizon] forecast from what the window's end
knows.

Metrics, for the network and for each baseline (`baseline_<name>_<metric>`): MAE, RMSE, MAPE (when no true value
is 0) and MASE, the MAE over the seasonal naive forecast's one-season-ahead MAE on the train periods (Hyndman and
Koehler 2006): below 1 beats it in-sample. The summary says which baseline the network beats and by how much, and
says so when it loses (a random walk is best forecast by its last value: a network should lose to naive there).
"""

import dataclasses
import os

import keras
import numpy as np
from keras import layers

from models.sequence import FORECAST, WINDOW, Standardize
from pipelines import artifacts, baselines
from pipelines.errors import PipelineError
from pipelines.exported import BESIDE
from pipelines.families import Asked, Family, Picture, Workspace
from pipelines.families.regressor import ErrorScorer
from pipelines.families.regressor import ERROR_COLUMNS, REGRESSOR_LIMITS, compile_regressor
from pipelines.metadata import TensorInfo
from pipelines.shipping import Shipment

FORECASTS_PNG = "forecasts.png"
INTERVAL_LEVELS = (0.5, 0.8, 0.9, 0.95)  # the coverages dlpipe-predict --interval offers
LOWER, UPPER = BESIDE  # the exported files' interval bounds, beside the forecast (with_bounds)

# A forecast's steps are judged as a regressor's one value is (REGRESSOR_LIMITS), and it trains as one does.
FORECASTER_LIMITS = REGRESSOR_LIMITS


def linear_model(series, weights: np.ndarray | None = None, name: str = "linear_forecaster") -> keras.Model:
    """A linear forecast from a raw window as Keras layers: the window standardised, flattened, and one Dense layer
    whose weights are `weights` ([window · columns + 1, horizon] on the standardised window and 1; by default the
    linear autoregression's closed-form fit, baselines.linear_weights). It forecasts what they do, in every file."""
    scale = series.scale()
    weights = (baselines.linear_weights(series) if weights is None else weights).astype(np.float32)
    window = keras.Input(shape=(series.window, len(series.columns)), name=WINDOW)
    x = Standardize(scale["mean"], scale["std"], name="linear_standardize", dtype="float32")(window)
    x = layers.Flatten(name="linear_flatten", dtype="float32")(x)
    dense = layers.Dense(series.horizon, name=FORECAST, dtype="float32")  # the exports' output name
    forecast = dense(x)
    dense.set_weights([weights[:-1], weights[-1]])
    return keras.Model(window, forecast, name=name)


# statsforecast's models that are affine in the window once fitted, shipped as one Dense layer when they are
# (baselines.window_weights): the candidate's name → the model. Not AutoETS: its forecast from a window starts from
# states fitted again on that window alone, and measured on the benchmark panel it was 2.6× AutoETS' own forecast from
# the whole history (additive ETS; a multiplicative one is not affine at all).
# Each is scored on validation fitted on the train period, and once chosen ships fitted on every row of the file, as
# a statsforecast user fits it; evaluate judges it fitted on the train period again (as_scored), so no member has
# seen the test windows. Measured on benchmarks/forecasts.py's 28 series, each one's last season held out: AutoARIMA's
# member alone had 1.13× the MAE of statsforecast's AutoARIMA fitted on every row when fitted on the train period, and
# 0.95× refit; the shipped mean 1.06×/1.10× AutoETS/AutoARIMA, and 1.04×/1.08× with it refit (at 180 origins of their
# test periods, refit at each: 1.03×/1.09× and 1.01×/1.06×). The linear autoregression refit on every row was worse
# (1.19× → 1.30×): it stays fitted on the train period.
STATISTICAL = {"arima": "AutoARIMA"}
# What may ship (--forecaster; config.py): the mean of the candidates validation keeps (the default), or the refit
# AutoARIMA alone where it is one (one series without covariates). Measured on benchmarks/forecasts.py's 28 series
# (MAE over AutoETS' and AutoARIMA's, geometric means; docs/time-series.md): each one's last season held out, the mean
# 1.04×/1.08×, AutoARIMA alone 0.91×/0.95×, but one series (euretail, 19× apart) makes most of that gap (without it
# 0.98×/1.03× against 0.96×/1.00×, AutoARIMA alone better on 15 of 28); at 180 origins of their test periods, every
# reference refit at each one, the mean 1.01×/1.06× and AutoARIMA alone 1.01×/1.07× (the mean better on 21 of 28).
# No measure makes AutoARIMA alone the better default; validation cannot choose either (its few windows preferred
# the mean on 14 of the 28 series, AutoARIMA alone on the other 14).
FORECASTERS = ("mean", "arima")
# A candidate whose validation MAE is more than this many times the best one's is left out of the mean: a guard
# against a broken candidate (a network that learned nothing), not a choice between good ones, which the few
# validation windows a series has cannot make (benchmarks/forecasts.py: choosing the best on validation, 1.03× the
# better of AutoETS and AutoARIMA; the mean of all three, 0.94×).
GUARD = 3.0


def statistical_model(series, model_name: str, name: str, every_row: bool = False) -> keras.Model | None:
    """statsforecast's `model_name` fitted on the train period (`every_row`: on all of the file), as linear_model's
    layers: its affine map from the label's window (baselines.window_weights) on the standardised window, the
    covariates' weights 0; None when it is not affine in the window."""
    found = baselines.window_weights(series, model_name, every_row)
    if found is None:
        return None
    weights, bias = found
    scale, columns = series.scale(), len(series.columns)
    mean, std = scale["mean"][0], scale["std"][0]
    standardised = np.zeros((series.window * columns + 1, series.horizon))
    standardised[0:-1:columns] = weights * std           # x = std · z + mean, for the label column of each step
    standardised[-1] = bias + mean * weights.sum(axis=0)
    return linear_model(series, standardised, name=f"{name}_forecaster")


def candidates(network: keras.Model, series) -> dict[str, keras.Model]:
    """What the forecast may combine, each a model from a raw window to the forecast: the trained network, the linear
    autoregression, and statsforecast's AutoARIMA fitted on the train period where it is affine in the window (one
    series)."""
    found = {"network": network, "linear": linear_model(series)}
    for name, model_name in STATISTICAL.items():
        statistical = statistical_model(series, model_name, name)
        if statistical is not None:
            found[name] = statistical
    return found


def combined(models: dict[str, keras.Model]) -> keras.Model:
    """The mean of the models' forecasts as one graph from a raw window; a model alone is itself."""
    if len(models) == 1:
        return next(iter(models.values()))
    first = next(iter(models.values()))
    window = keras.Input(shape=first.inputs[0].shape[1:], name=WINDOW)
    mean = layers.Average(name=FORECAST, dtype="float32")([m(window) for m in models.values()])
    return keras.Model(window, mean, name="mean_of_" + "_".join(models))


def members_of(model: keras.Model, members: list[str]) -> dict[str, keras.Model]:
    """The shipped model's members by name: the mean's sub-models in the order `members` (config.json's `chosen`)
    names them, or the model itself when it is one member alone."""
    parts = [model] if len(members) == 1 else [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return dict(zip(members, parts))


def refitted(members: list[str], series) -> dict[str, keras.Model]:
    """The chosen statistical members fitted on every row of the file (STATISTICAL), to ship; one that cannot be is
    shipped as it was scored."""
    found = {name: statistical_model(series, STATISTICAL[name], name, every_row=True)
             for name in members if name in STATISTICAL}
    return {name: model for name, model in found.items() if model is not None}


def shipped(models: dict[str, keras.Model], members: list[str], series) -> tuple[keras.Model, list[str]]:
    """The mean of `members` as it ships: the statistical ones refit on every row (refitted); and their names."""
    refit = refitted(members, series)
    return combined({name: refit.get(name, models[name]) for name in members}), list(refit)


def choose(network: keras.Model, work: Workspace) -> tuple[keras.Model, dict]:
    """The candidates each scored on the validation windows (never the test period's) and left out when its MAE
    there is over GUARD times the best one's; of the rest, what --forecaster's rule ships (by_rule: their mean, a
    combination the M competitions found hard to beat, or AutoARIMA alone), its statistical members refit on every
    row (STATISTICAL); and every candidate's validation MAE, and the shipped one's as scored. Without a validation
    window, all of them under the rule."""
    series = work.data.series
    models = candidates(network, series)
    batches = list(work.inputs.validation.as_numpy_iterator())
    rule = work.config.forecaster
    if not batches:
        members = by_rule(list(models), rule, series)
        model, refit = shipped(models, members, series)
        return model, {"forecaster": "mean" if len(members) > 1 else members[0], "members": members,
                       "refit": refit, "rule": rule}
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches]).astype(np.float64)

    def mae(model):
        return float(np.mean(np.abs(model.predict(x, verbose=0).astype(np.float64) - y)))
    scored = {name: mae(m) for name, m in models.items()}
    finite = {name: value for name, value in scored.items() if np.isfinite(value)}  # a NaN forecast fails the guard
    members = [name for name, value in finite.items() if value <= GUARD * min(finite.values())] or list(models)
    members = by_rule(members, rule, series)
    mean = mae(combined({name: models[name] for name in members}))
    model, refit = shipped(models, members, series)
    what = described(members)
    print(f"  ships {what} (validation MAE {mean:.4g}): " + ", ".join(
        f"{name} {value:.4g}" for name, value in scored.items()) + f" on {len(x)} windows"
        + (f"; {', '.join(refit)} refit on every row" if refit else ""), flush=True)
    return model, {"forecaster": "mean" if len(members) > 1 else members[0], "members": members, "refit": refit,
                   "rule": rule, "validation_mae": {**scored, "shipped": mean}, "validation_windows": len(x)}


def described(members: list[str]) -> str:
    """What ships, in words: the mean of the members, or one alone (the run's line and report.md say it alike)."""
    return f"the mean of {', '.join(members)}" if len(members) > 1 else f"the {members[0]} forecaster alone"


def by_rule(members: list[str], rule: str, series) -> list[str]:
    """The members that ship under --forecaster's `rule` (FORECASTERS): arima, AutoARIMA alone when validation kept
    it and the data are one series without covariates (the others' columns it cannot read); else all of them."""
    if rule == "arima" and "arima" in members and len(series.columns) == 1:
        return ["arima"]
    return members


def as_scored(model: keras.Model, work: Workspace) -> keras.Model:
    """The shipped mean with the members choose refit on every row fitted on the train period again, as they were
    scored on validation: what the test windows judge, every member unseen by them. The others are the shipped
    model's own layers."""
    chosen = work.chosen("members", "refit")
    if not chosen.get("refit"):
        return model
    models = members_of(model, chosen["members"])
    for name in chosen["refit"]:
        models[name] = statistical_model(work.data.series, STATISTICAL[name], name)
    return combined(models)


def mase_scale(series) -> float:
    """The seasonal naive forecast's MAE one season ahead over the train periods (one step when too short)."""
    errors = []
    for values, (validation, _) in zip(series.values, series.periods):
        y = values[:validation, 0].astype(np.float64)
        m = series.season if len(y) > series.season else 1
        errors.append(np.abs(y[m:] - y[:-m]))
    scale = float(np.mean(np.concatenate(errors)))
    return scale if scale > 0 else 1.0


def scores(predicted: np.ndarray, truth: np.ndarray, scale: float) -> dict[str, float]:
    error = predicted - truth
    found = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))),
             "mase": float(np.mean(np.abs(error)) / scale)}
    if np.all(truth != 0):
        found["mape"] = float(100 * np.mean(np.abs(error / truth)))
    return found


def verdict(metrics: dict) -> str:
    """Which baseline the network beats, by how much, and the one it loses to, in one sentence."""
    mine = metrics["test_mae"]
    theirs = {b.name: metrics[f"baseline_{b.name}_mae"] for b in baselines.BASELINES
              if f"baseline_{b.name}_mae" in metrics}
    best = min(theirs, key=theirs.get)
    name = best.replace("_", " ")
    if mine < theirs[best]:
        return (f"the network beats every baseline: MAE {mine:.4g}, {100 * (1 - mine / theirs[best]):.0f}% below "
                f"the best of them, {name} ({theirs[best]:.4g})")
    beaten = [n.replace("_", " ") for n, v in theirs.items() if mine < v]
    worse = 100 * (mine / theirs[best] - 1)
    return (f"the network loses to {name}: MAE {mine:.4g} against {theirs[best]:.4g} ({worse:.0f}% worse); it "
            f"beats {', '.join(beaten) if beaten else 'none of the baselines'}")


def evaluate_forecaster(model: keras.Model, work: Workspace) -> dict:
    series = work.data.series
    model = as_scored(model, work)
    predicted = model.predict(work.inputs.test, verbose=0).astype(np.float64)
    ends = series.ends["test"][:len(predicted)]
    truth = baselines.targets(series, ends)
    scale = mase_scale(series)
    metrics = {f"test_{name}": value for name, value in scores(predicted, truth, scale).items()}
    forecasts = baselines.forecasts(series, ends)
    for name, forecast in forecasts.items():
        metrics.update({f"baseline_{name}_{k}": v for k, v in scores(forecast, truth, scale).items()})
    metrics.update(verdict=verdict(metrics), season=series.season, window=series.window, horizon=series.horizon,
                   step=series.step, test_windows=len(ends),
                   test_mae_per_step=np.mean(np.abs(predicted - truth), axis=0).tolist())
    metrics.update(intervals(model, work, predicted, truth))
    metrics.update(work.chosen("forecaster", "members", "refit", "validation_mae", "validation_windows"))
    metrics.update({f"forecaster_{key}": value for key, value in work.chosen("rule").items()})
    print(f"  {metrics['verdict']}", flush=True)
    plot_forecasts(series, ends, predicted, truth, forecasts, work.path(FORECASTS_PNG))
    return metrics


def intervals(model: keras.Model, work: Workspace, predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Split-conformal intervals scaled by each window's spread (Intervals): per step ahead, the multiple of the
    spread that covers each level of a set of held-out windows' absolute errors over their windows' spreads (with
    the finite-sample correction, ceil((n + 1) level) of n). Measured honestly: the multiples from the validation
    windows alone, and how much of the test windows' truth they cover (`test_interval_coverage`). Shipped
    (`interval`, what dlpipe-predict --interval and dlpipe-serve add): the multiples from the validation and the test
    windows together, every held-out error the run has (a short series has one or two validation windows, whose
    errors alone made the 80% interval cover a third of the season after the file)."""
    batches = list(work.inputs.validation.as_numpy_iterator())
    if not batches:
        return {}
    errors = np.concatenate([np.abs(model.predict(x, verbose=0).astype(np.float64) - np.asarray(y, np.float64))
                             for x, y in batches])
    steps = spread_steps(work.data.series)
    spreads = np.concatenate([Intervals.spread_of(_windows(x), steps, 0.0) for x, _ in batches])
    tested = np.concatenate([Intervals.spread_of(_windows(x), steps, 0.0)
                             for x, _ in work.inputs.test.as_numpy_iterator()])[:len(predicted)]
    moving = spreads[spreads > 0]  # a flat window's spread is 0: the floor comes from the others
    floor = SPREAD_FLOOR * float(np.median(moving)) if len(moving) else 1.0
    spreads, tested = np.maximum(spreads, floor), np.maximum(tested, floor)
    judged = Intervals.fitted(errors, spreads, steps, floor)
    shipped = Intervals.fitted(np.concatenate([errors, np.abs(predicted - truth)]), np.concatenate([spreads, tested]),
                               steps, floor)
    coverage = {level: float(np.mean(np.abs(predicted - truth) <= tested[:, None] * np.asarray(multiples)))
                for level, multiples in judged.multiples.items()}
    return {"interval": shipped.as_metrics(), "test_interval_coverage": coverage,
            "interval_validation_windows": len(errors), "interval_windows": len(errors) + len(predicted)}


# A window's spread is at least this share of the median spread of the calibration windows that are not flat (a
# flat window would otherwise get an interval of no width).
SPREAD_FLOOR = 0.1


def spread_steps(series) -> int:
    """The window's last steps whose label's standard deviation is its spread: two seasons (the whole window when
    it is shorter, or when the series has no season)."""
    return min(series.window, 2 * series.season) if series.season > 1 else series.window


def _windows(x) -> np.ndarray:
    """The raw windows [n, steps, columns] of a batch of inputs (a dict by input name, or the array itself)."""
    return np.asarray(x[WINDOW] if isinstance(x, dict) else x, np.float64)


@dataclasses.dataclass(frozen=True)
class Intervals:
    """A forecast's intervals, as wide as its window is spread: at each level, per step ahead, the half-width is
    `multiples[level][k]` times the window's spread (the standard deviation of its label over its last `steps`
    steps, at least `floor`). Scaled so, the errors of a series' quiet and busy stretches, and of series of
    different sizes, calibrate one another. Measured on benchmarks/forecasts.py's 28 series (each one's last season
    held out, the 80% interval; AVX2 kind): absolute half-widths covered 65.8% of the held-out values and 65.2% of the
    test windows (calibrated on validation alone); scaled by the spread over two seasons, 70.5% and 68.5%; by the
    window's level 70.2% and 68.6% (but a level near zero has no width); by the mean step 69.6% and 67.6%."""
    multiples: dict[str, list[float]]  # level ("0.8") → per step ahead
    steps: int
    floor: float

    @staticmethod
    def spread_of(windows: np.ndarray, steps: int, floor: float) -> np.ndarray:
        """Each window's spread [n], from raw windows [n, steps, columns] (the label first) or [n, steps]."""
        label = np.asarray(windows, np.float64)
        label = label[..., 0] if label.ndim == 3 else label
        return np.maximum(np.std(label[:, -steps:], axis=1), floor)

    @classmethod
    def fitted(cls, errors: np.ndarray, spreads: np.ndarray, steps: int, floor: float) -> "Intervals":
        """The multiples that cover each of INTERVAL_LEVELS of the absolute errors [n, horizon] over their windows'
        spreads [n] (floored)."""
        scaled = errors / spreads[:, None]
        return cls({str(level): quantile_of(scaled, level).tolist() for level in INTERVAL_LEVELS}, steps, floor)

    @property
    def levels(self) -> list[str]:
        """The levels, in increasing order (the order of the exported files' bounds)."""
        return sorted(self.multiples, key=float)

    def halfwidths(self, windows, level: str) -> np.ndarray:
        """Per window, per step ahead, the half-width [n, horizon] at `level`; `windows` raw [n, steps, columns] or
        a batch of inputs by name."""
        spreads = self.spread_of(_windows(windows), self.steps, self.floor)
        return spreads[:, None] * np.asarray(self.multiples[level])[None]

    def as_metrics(self) -> dict:
        return {"multiples": self.multiples, "spread_steps": self.steps, "spread_floor": self.floor}

    @classmethod
    def from_metrics(cls, metrics: dict) -> "Intervals | None":
        """metrics.json's intervals; None when it has none. A run evaluated before they were scaled (its
        `interval_halfwidths` in the label's units) is one line naming the fix."""
        if isinstance(metrics, dict) and "interval_halfwidths" in metrics and "interval" not in metrics:
            raise PipelineError("its intervals were measured before they scaled with each window's spread: run dlpipe "
                                "--stages=evaluate --force for it")
        found = metrics.get("interval") if isinstance(metrics, dict) else None
        try:
            return cls({str(k): [float(w) for w in v] for k, v in found["multiples"].items()},
                       int(found["spread_steps"]), float(found["spread_floor"]))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None


def quantile_of(errors: np.ndarray, level: float) -> np.ndarray:
    """Per step ahead, the ceil((n + 1) level)-th smallest of n errors [n, horizon] (the largest when the windows are
    too few for the level)."""
    rank = min(len(errors), int(np.ceil((len(errors) + 1) * level))) - 1
    return np.sort(errors, axis=0)[rank]


def plot_forecasts(series, ends, predicted, truth, forecasts, path: str, shown: int = 3) -> None:
    """Per series (the first few): its last stretch, and the network's forecasts from every horizon-th origin of
    the test period; beside them, the MAE per step ahead of the network and each baseline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted(set(ends[:, 0].tolist()))[:shown]
    figure, axes = plt.subplots(len(names) + 1, 1, figsize=(10, 3 * (len(names) + 1)), squeeze=False)
    for ax, i in zip(axes[:, 0], names):
        values = series.values[i][:, 0]
        start = max(0, series.periods[i][1] - 3 * max(series.horizon, series.season))
        ax.plot(range(start, len(values)), values[start:], color="black", lw=1, label="truth")
        mine = np.flatnonzero(ends[:, 0] == i)
        for k, row in enumerate(mine[::series.horizon]):
            t = ends[row, 1]
            ax.plot(range(t + 1, t + 1 + series.horizon), predicted[row], color="tab:blue", lw=1.5,
                    label="forecast" if k == 0 else None)
        ax.axvline(series.periods[i][1] - 0.5, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{series.label_column}" + (f", series {series.ids[i]}" if series.ids[i] else ""))
        ax.legend(loc="upper left")
    ax = axes[-1, 0]
    steps = np.arange(1, series.horizon + 1)
    ax.plot(steps, np.mean(np.abs(predicted - truth), 0), "o-", label="network", lw=2)
    for name, forecast in forecasts.items():
        ax.plot(steps, np.mean(np.abs(forecast - truth), 0), ".--", label=name.replace("_", " "))
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("test MAE")
    ax.legend()
    figure.tight_layout()
    with artifacts.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)


# The calibration windows' label column shifted by these multiples of its span: a quantized file clips every value
# to the range it was calibrated on, and a trending series leaves its train period's range (AirPassengers' test
# year reaches 1.7× the train period's largest value; calibrated on train windows alone, the int16x8 file's mean
# difference was 0.41 of the test RMSE). The body sees the window relative to its level and does not notice.
LEVEL_SHIFTS = (-2.0, -1.0, 1.0, 2.0, 4.0)


def with_shifted_levels(batch: dict) -> dict:
    """The calibration windows and copies of them with the label's level shifted up and down (LEVEL_SHIFTS)."""
    (name, x), = batch.items()
    label = x[..., 0]
    span = float(np.max(label) - np.min(label)) or max(float(np.max(np.abs(label))), 1.0)
    column = np.zeros(x.shape[-1], x.dtype)
    column[0] = span
    return {name: np.concatenate([x, *(x + shift * column for shift in LEVEL_SHIFTS)])}


def with_bounds(model: keras.Model, intervals: "Intervals") -> keras.Model:
    """The forecaster with its interval's bounds beside the forecast, computed in the graph from the window as
    dlpipe-predict computes them (Intervals.halfwidths): `lower` and `upper` [batch, levels, horizon], the forecast
    minus and plus the window's spread times each level's multiples, levels in increasing order."""
    from keras import ops
    multiples = np.array([intervals.multiples[level] for level in intervals.levels], np.float32)  # [levels, horizon]
    window = keras.Input(model.inputs[0].shape[1:], name=WINDOW)
    forecast = model(window)
    spread = ops.maximum(ops.std(window[:, -intervals.steps:, 0], axis=1), intervals.floor)
    half = spread[:, None, None] * multiples[None]
    return keras.Model(window, {FORECAST: layers.Identity(name=FORECAST)(forecast),
                                LOWER: layers.Identity(name=LOWER)(forecast[:, None, :] - half),
                                UPPER: layers.Identity(name=UPPER)(forecast[:, None, :] + half)},
                       name=f"{model.name}_with_bounds")


def ship_forecaster(model: keras.Model, work: Workspace | None = None) -> Shipment:
    """A window of raw values in, the next values out, the same in every file (the scaling is in the model); with
    the run's intervals (metrics.json, when evaluate measured them), their bounds beside the forecast in the
    SavedModel and the float files (with_bounds). The int16x8 file forecasts alone: 16-bit kernels have no square
    root for the window's spread."""
    steps, columns = model.inputs[0].shape[1:]
    horizon = model.outputs[0].shape[-1]
    tensors = {WINDOW: TensorInfo(f"{steps} steps × {columns} columns of raw values, oldest step first (the label "
                                  "first, then the covariates; config.json's trained_on names them)"),
               FORECAST: TensorInfo(f"the label's next {horizon} values, in its own units")}
    found = None
    if work is not None and os.path.exists(work.path(artifacts.METRICS)):
        found = Intervals.from_metrics(artifacts.read_json(work.path(artifacts.METRICS)))
    served = model
    if found is not None:
        served = with_bounds(model, found)
        levels = ", ".join(found.levels)
        for name, sign in ((LOWER, "minus"), (UPPER, "plus")):
            tensors[name] = TensorInfo(
                f"[levels, {horizon}]: the forecast {sign} its interval's half-width at each level ({levels}): the "
                f"window's spread (the standard deviation of its label's last {found.steps} steps, at least "
                f"{found.floor:.6g}) times the multiples metrics.json's interval holds, calibrated on held-out windows")
    return Shipment(model=served, quantizable=model, reference=model, limits=dict(FORECASTER_LIMITS), classes=False,
                    tensors=tensors, widen_calibration=with_shifted_levels,
                    made_from=(artifacts.METRICS,) if work is not None else ())


def report_verdict(metrics: dict) -> list[str]:
    if "verdict" not in metrics:
        return []
    baseline_names = [b.name for b in baselines.BASELINES if f"baseline_{b.name}_mae" in metrics]
    rows = [("network", *(f"{metrics.get(f'test_{m}', float('nan')):.4g}" for m in ("mae", "rmse", "mase")))]
    rows += [(name.replace("_", " "), *(f"{metrics.get(f'baseline_{name}_{m}', float('nan')):.4g}"
                                        for m in ("mae", "rmse", "mase"))) for name in baseline_names]
    table = ["| forecast | MAE | RMSE | MASE |", "|---|---|---|---|", *(f"| {' | '.join(r)} |" for r in rows)]
    lines = [f"On {metrics['test_windows']} test windows (horizon {metrics['horizon']}, season {metrics['season']}): "
             f"{metrics['verdict']}.", "", *table, ""]
    return lines + report_choice(metrics)


def report_choice(metrics: dict) -> list[str]:
    """What shipped, why, and whether it was refit: report.md's paragraph after the table."""
    if "forecaster" not in metrics:
        return []
    members = metrics.get("members", [metrics["forecaster"]])
    what = described(members)
    if metrics.get("validation_windows"):
        scored = ", ".join(f"{name} {value:.4g}" for name, value in metrics["validation_mae"].items())
        why = (f"each forecaster scored on the {metrics['validation_windows']} validation windows ({scored}), one "
               f"over {GUARD:g}× the best one's MAE left out")
    else:
        why = "no validation window to score them on"
    if metrics.get("forecaster_rule") == "arima" and members == ["arima"]:
        why += "; --forecaster=arima ships AutoARIMA alone for one series without covariates"
    refit = metrics.get("refit") or []
    return [f"What ships (and is scored above as the network) is {what}: {why} (linear: the closed-form "
            "autoregression; arima: statsforecast's AutoARIMA, forecasting from the window as one Dense layer)."
            + (f" Once chosen, {', '.join(refit)} ships fitted on every row of the file; the scores above are of it "
               "fitted on the train period, as on validation: it has not seen the test windows." if refit else ""), ""]


def answer_forecasts(values: np.ndarray, names, asked: Asked) -> dict[str, list]:
    """Each step ahead's forecast, one column per step; with an interval, its lower and upper bounds after it."""
    columns = {}
    for k in range(values.shape[1]):
        columns[f"{asked.header}_{k + 1}"] = values[:, k].tolist()
        if asked.halfwidths is not None:
            columns[f"{asked.header}_{k + 1}_lower"] = (values[:, k] - asked.halfwidths[:, k]).tolist()
            columns[f"{asked.header}_{k + 1}_upper"] = (values[:, k] + asked.halfwidths[:, k]).tolist()
    return columns


FORECASTER = Family(
    name="forecaster", compile=compile_regressor, evaluate=evaluate_forecaster, ship=ship_forecaster,
    headline="test_mase", objective="val_loss", objective_direction="min", loss_key="loss", gradient_norm=True,
    export_columns=ERROR_COLUMNS,
    pictures=(Picture(FORECASTS_PNG, "the test period's forecasts, and the error per step ahead against the "
                                     "baselines"),),
    report=report_verdict, answer=answer_forecasts, scorer=ErrorScorer, choose=choose, intervals=Intervals.from_metrics,
    left_out={"int8": "8-bit activations hold a window's raw values and the forecast too coarsely once they span "
                      "a trend's range (AirPassengers: test RMSE 1.33× the float model's); the int16x8 file ships"})
