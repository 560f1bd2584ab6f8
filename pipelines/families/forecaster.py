"""The forecaster family: a series' next `horizon` values from a window of its past, judged on the test windows
against the baselines any forecaster must beat, computed in the same run on the same windows.

Baselines (each a [windows, horizon] forecast from what the window's end knows):
- naive: the last value, repeated;
- seasonal naive: the value one season before each step ahead (the last season, repeated);
- drift: the last value plus the series' average step so far, times the steps ahead;
- linear: a linear autoregression on the same windows as the network (every column of every step), fitted in
  closed form (least squares) on the train windows.

Metrics, for the network and for each baseline (`baseline_<name>_<metric>`): MAE, RMSE, MAPE (when no true value
is 0) and MASE, the MAE over the seasonal naive forecast's one-season-ahead MAE on the train periods (Hyndman and
Koehler 2006): below 1 beats it in-sample. The summary says which baseline the network beats and by how much, and
says so when it loses (a random walk is best forecast by its last value: a network should lose to naive there).
"""

import keras
import numpy as np

from models.sequence import FORECAST, WINDOW
from pipelines import artifacts
from pipelines.families import Asked, Family, Picture, Workspace
from pipelines.families.regressor import ErrorScorer
from pipelines.families.regressor import ERROR_COLUMNS, REGRESSOR_LIMITS, compile_regressor
from pipelines.metadata import TensorInfo
from pipelines.shipping import Shipment

FORECASTS_PNG = "forecasts.png"
BASELINES = ("naive", "seasonal_naive", "drift", "linear")
MAX_LINEAR_WINDOWS = 200_000  # the linear baseline is fitted on at most this many train windows (evenly spaced)

# A forecast's steps are judged as a regressor's one value is (REGRESSOR_LIMITS), and it trains as one does.
FORECASTER_LIMITS = REGRESSOR_LIMITS


def windows(series, ends: np.ndarray) -> np.ndarray:
    """The windows ending at `ends` ((series, last step) pairs), [n, window, columns]."""
    w = series.window
    return np.stack([series.values[i][t - w + 1:t + 1] for i, t in ends]) if len(ends) else \
        np.zeros((0, w, len(series.columns)), np.float32)


def targets(series, ends: np.ndarray) -> np.ndarray:
    return np.stack([series.values[i][t + 1:t + 1 + series.horizon, 0] for i, t in ends]).astype(np.float64)


def baselines(series, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Each baseline's forecasts for the windows ending at `ends`, [n, horizon]."""
    steps = np.arange(1, series.horizon + 1)
    m = series.season
    forecasts = {name: [] for name in BASELINES[:3]}
    for i, t in ends:
        y = series.values[i][:, 0].astype(np.float64)
        forecasts["naive"].append(np.full(series.horizon, y[t]))
        back = t + steps - m * np.ceil(steps / m).astype(int)  # the same step of the last season known at t
        forecasts["seasonal_naive"].append(y[np.maximum(back, 0)])
        forecasts["drift"].append(y[t] + steps * ((y[t] - y[0]) / t if t else 0.0))
    result = {name: np.array(f).reshape(len(ends), series.horizon) for name, f in forecasts.items()}
    result["linear"] = linear_autoregression(series)(windows(series, ends))
    return result


def linear_autoregression(series):
    """Least squares from a flattened window (and 1) to the next `horizon` values, fitted on the train windows."""
    ends = series.ends["train"]
    ends = ends[np.linspace(0, len(ends) - 1, min(len(ends), MAX_LINEAR_WINDOWS)).astype(int)]
    scale = series.scale()
    mean, std = np.array(scale["mean"]), np.array(scale["std"])

    def design(x):
        flat = ((x - mean) / std).reshape(len(x), -1)
        return np.hstack([flat, np.ones((len(x), 1))])
    weights, *_ = np.linalg.lstsq(design(windows(series, ends)), targets(series, ends), rcond=None)
    return lambda x: design(x) @ weights


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
    theirs = {name: metrics[f"baseline_{name}_mae"] for name in BASELINES}
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
    predicted = model.predict(work.inputs.test, verbose=0).astype(np.float64)
    ends = series.ends["test"][:len(predicted)]
    truth = targets(series, ends)
    scale = mase_scale(series)
    metrics = {f"test_{name}": value for name, value in scores(predicted, truth, scale).items()}
    forecasts = baselines(series, ends)
    for name, forecast in forecasts.items():
        metrics.update({f"baseline_{name}_{k}": v for k, v in scores(forecast, truth, scale).items()})
    metrics.update(verdict=verdict(metrics), season=series.season, window=series.window, horizon=series.horizon,
                   step=series.step, test_windows=len(ends),
                   test_mae_per_step=np.mean(np.abs(predicted - truth), axis=0).tolist())
    print(f"  {metrics['verdict']}", flush=True)
    plot_forecasts(series, ends, predicted, truth, forecasts, work.path(FORECASTS_PNG))
    return metrics


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


def ship_forecaster(model: keras.Model) -> Shipment:
    """A window of raw values in, the next values out, the same in every file (the scaling is in the model)."""
    steps, columns = model.inputs[0].shape[1:]
    horizon = model.outputs[0].shape[-1]
    tensors = {WINDOW: TensorInfo(f"{steps} steps × {columns} columns of raw values, oldest step first (the label "
                                  "first, then the covariates; config.json's trained_on names them)"),
               FORECAST: TensorInfo(f"the label's next {horizon} values, in its own units")}
    return Shipment(model=model, quantizable=model, reference=model, limits=dict(FORECASTER_LIMITS), classes=False,
                    tensors=tensors)


def report_verdict(metrics: dict) -> list[str]:
    if "verdict" not in metrics:
        return []
    rows = [("network", *(f"{metrics.get(f'test_{m}', float('nan')):.4g}" for m in ("mae", "rmse", "mase")))]
    rows += [(name.replace("_", " "), *(f"{metrics.get(f'baseline_{name}_{m}', float('nan')):.4g}"
                                        for m in ("mae", "rmse", "mase"))) for name in BASELINES]
    table = ["| forecast | MAE | RMSE | MASE |", "|---|---|---|---|", *(f"| {' | '.join(r)} |" for r in rows)]
    return [f"On {metrics['test_windows']} test windows (horizon {metrics['horizon']}, season {metrics['season']}): "
            f"{metrics['verdict']}.", "", *table, ""]


def answer_forecasts(values: np.ndarray, names, asked: Asked) -> dict[str, list]:
    """Each step ahead's forecast, one column per step."""
    return {f"{asked.header}_{k + 1}": values[:, k].tolist() for k in range(values.shape[1])}


FORECASTER = Family(
    name="forecaster", compile=compile_regressor, evaluate=evaluate_forecaster, ship=ship_forecaster,
    headline="test_mase", objective="val_loss", objective_direction="min", loss_key="loss", gradient_norm=True,
    export_columns=ERROR_COLUMNS,
    pictures=(Picture(FORECASTS_PNG, "the test period's forecasts, and the error per step ahead against the "
                                     "baselines"),),
    report=report_verdict, answer=answer_forecasts, scorer=ErrorScorer,
    left_out={"int8": "a full-integer forecaster quantizes a window of raw values and the level added back to "
                      "the same 8 bits: on a seasonal series its test RMSE was four times the float model's"})
