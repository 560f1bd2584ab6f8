"""Forecasting a series from a CSV: the network against the baselines in the same run, exports that forecast as
Keras does, several series with a covariate, new data forecast past their end, and bad series as one line."""

import csv
import json
import os

import numpy as np
import pytest

from pipelines import artifacts, prediction, runner
from pipelines.families import Asked, forecaster
from tests import series as made
from tests.conftest import assert_one_line_error, cli_in_process, config_from_flags


def metrics_of(folder) -> dict:
    return json.load(open(os.path.join(folder, artifacts.METRICS)))


def test_the_recurrent_forecaster_beats_seasonal_naive_and_its_exports_forecast_as_keras_does(tmp_path):
    path = made.monthly_csv(tmp_path / "airline.csv", made.seasonal())
    records = runner.run(config_from_flags("--task=recurrent", f"--dataset={path}", "--time_column=month",
                                           "--label_column=passengers", "--horizon=12", "--epochs=4",
                                           f"--output_dir={tmp_path}"))
    metrics = metrics_of(tmp_path / "recurrent")
    assert metrics["family"] == "forecaster" and metrics["season"] == 12 and metrics["window"] == 24
    assert metrics["test_mae"] < metrics["baseline_seasonal_naive_mae"] and metrics["test_mase"] < 1
    assert metrics["test_mae"] < metrics["baseline_naive_mae"] and metrics["test_mae"] < metrics["baseline_drift_mae"]
    assert {"test_rmse", "test_mape", "baseline_linear_mae", "baseline_seasonal_naive_mase"} <= set(metrics)
    assert "seasonal naive" not in metrics["verdict"].split("beats")[0]  # never the one it loses to
    exports = json.load(open(tmp_path / "recurrent" / artifacts.VERIFY))
    assert exports["passed"] and set(exports["exports"]) == {"keras", "savedmodel", "float32", "dynamic_range",
                                                             "float16", "onnx"}  # int8 left out for forecasters
    for variant in ("float32", "onnx"):
        assert exports["exports"][variant]["max_rel_diff"] < 1e-4
    report = open(tmp_path / "recurrent" / artifacts.REPORT).read()
    assert "| seasonal naive |" in report and "![the test period's forecasts" in report
    assert records[1].result.startswith("test_mase=")


def test_on_a_random_walk_the_report_says_the_network_loses_to_the_last_value(tmp_path):
    path = made.write(tmp_path / "walk.csv", ["date", "price"], zip(made.days(500), np.round(made.random_walk(), 3)))
    runner.run(config_from_flags("--task=dense", f"--dataset={path}", "--time_column=date", "--label_column=price",
                                 "--horizon=5", f"--output_dir={tmp_path}", "--stages=train,evaluate"))
    metrics = metrics_of(tmp_path / "dense")
    assert metrics["verdict"].startswith("the network loses to ")
    assert min(metrics["baseline_naive_mae"], metrics["baseline_drift_mae"]) < metrics["test_mae"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    path = made.stores_csv(root / "sales.csv")
    runner.run(config_from_flags("--task=conv", f"--dataset={path}", "--time_column=date", "--label_column=units",
                                 "--series_id_column=store", "--horizon=7", f"--output_dir={root}",
                                 "--stages=train,evaluate,export", "--tflite_variants=float32", "--noonnx"))
    return root, path


def test_several_series_with_a_covariate_train_one_model_and_forecast_past_their_end(stores):
    root, path = stores
    metrics = metrics_of(root / "conv")
    assert metrics["test_windows"] == 3 * (40 - 7 + 1) and metrics["test_mae"] < metrics["baseline_naive_mae"]
    trained_on = json.load(open(root / "conv" / artifacts.CONFIG))["trained_on"]
    assert trained_on["columns"] == ["units", "price"] and trained_on["window"] == 14
    for model in ("saved_model", "model.tflite"):
        output = root / f"forecast_{model}.csv"
        summary = prediction.predict_file(prediction.open_run(str(root / "conv"), model), path, str(output),
                                          Asked("units"))
        rows = list(csv.DictReader(open(output)))
        assert summary.examples == 3 and [r["store"] for r in rows] == ["store0", "store1", "store2"]
        assert rows[0]["after"] == made.days(200)[-1] and list(rows[0])[2:] == [f"units_{k}" for k in range(1, 8)]
    keras_rows = list(csv.DictReader(open(root / "forecast_saved_model.csv")))
    lite_rows = list(csv.DictReader(open(root / "forecast_model.tflite.csv")))
    assert np.allclose([float(r["units_7"]) for r in keras_rows], [float(r["units_7"]) for r in lite_rows], rtol=1e-4)


def test_the_forecasts_come_with_intervals_that_cover_what_they_say(stores, tmp_path):
    """Split-conformal: per step ahead, multiples of a window's spread from the held-out windows' errors; their
    coverage of the test windows in metrics.json (multiples from validation alone), and each step's bounds in
    dlpipe-predict's output with --interval."""
    root, path = stores
    metrics = metrics_of(root / "conv")
    intervals, coverage = forecaster.Intervals.from_metrics(metrics), metrics["test_interval_coverage"]
    multiples = intervals.multiples
    assert set(multiples) == set(coverage) == {"0.5", "0.8", "0.9", "0.95"} and len(multiples["0.8"]) == 7
    assert all(a <= b for a, b in zip(multiples["0.8"], multiples["0.95"]))  # a wider interval for a higher level
    assert 0.6 <= coverage["0.8"] <= 1.0 and coverage["0.5"] <= coverage["0.8"] <= coverage["0.95"]
    predictor = prediction.open_run(str(root / "conv"))
    asked = Asked("units", interval=predictor.interval(0.8))
    prediction.predict_file(predictor, path, str(tmp_path / "f.csv"), asked)
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert list(rows[0])[2:5] == ["units_1", "units_1_lower", "units_1_upper"]
    k = 7
    table = list(csv.DictReader(open(path)))
    for r in rows:  # each store's last window: its own spread times the step's multiple
        units = np.array([float(t["units"]) for t in table if t["store"] == r["store"]])[-intervals.steps:]
        width = max(float(np.std(units)), intervals.floor) * multiples["0.8"][k - 1]
        value, lower, upper = (float(r[f"units_{k}{end}"]) for end in ("", "_lower", "_upper"))
        assert lower == pytest.approx(value - width, rel=1e-4) and upper == pytest.approx(value + width, rel=1e-4)
    with pytest.raises(Exception, match="--interval=0.7: the run measured intervals at 0.5, 0.8, 0.9, 0.95"):
        predictor.interval(0.7)


def test_a_series_for_prediction_without_the_trained_columns_is_one_line(stores, tmp_path):
    root, _ = stores
    short = made.write(tmp_path / "s.csv", ["date", "store", "units"], [(d, "store0", 1.0) for d in made.days(30)])
    with pytest.raises(Exception, match="has no column 'price', which the model reads"):
        prediction.predict_file(prediction.open_run(str(root / "conv")), short, str(tmp_path / "f.csv"), Asked())


def test_a_flat_history_is_forecast_and_a_history_of_another_step_is_one_line(stores, tmp_path):
    """A model forecasts any window it is given, a flat one too (a shop closed for a fortnight); a file at another
    step than the model learned (monthly rows for a daily model) is refused, not forecast as if daily."""
    root, _ = stores
    flat = made.write(tmp_path / "flat.csv", ["date", "store", "units", "price"],
                      [(d, "store0", 5.0, 2.0) for d in made.days(20)])
    summary = prediction.predict_file(prediction.open_run(str(root / "conv")), flat, str(tmp_path / "f.csv"),
                                      Asked("units"))
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert summary.examples == 1 and np.isfinite([float(rows[0][f"units_{k}"]) for k in range(1, 8)]).all()
    monthly = made.write(tmp_path / "monthly.csv", ["date", "store", "units", "price"],
                         [(f"{m}-01", "store0", i, 2.0) for i, m in enumerate(made.months(28, "2020-01"))])
    with pytest.raises(Exception, match="steps by 1 month, and the model in its folder was trained on steps of 1 day"):
        prediction.predict_file(prediction.open_run(str(root / "conv")), monthly, str(tmp_path / "m.csv"), Asked())
    assert not os.path.exists(tmp_path / "m.csv")


@pytest.mark.parametrize("flag", ["--series_id_column=store", "--horizon=7", "--window=14", "--season=7"])
def test_a_series_flag_without_a_time_column_is_one_line_not_a_plain_regression(tmp_path, flag):
    path = made.stores_csv(tmp_path / "sales.csv")
    assert_one_line_error(cli_in_process("--task=dense", f"--dataset={path}", "--label_column=units", flag,
                                         f"--output_dir={tmp_path}"),
                          f"{flag.split('=')[0]} does not apply to --dataset={path}", "give --time_column too")
    assert not os.path.exists(tmp_path / "dense" / artifacts.MODEL)


def test_a_long_file_of_sequences_without_its_time_column_names_the_missing_flag(tmp_path):
    path = made.stores_csv(tmp_path / "sales.csv")
    assert_one_line_error(cli_in_process("--task=conv", f"--dataset={path}", "--label_column=units",
                                         "--series_id_column=store", f"--output_dir={tmp_path}"),
                          "--series_id_column does not apply", "give --time_column too")


def test_a_series_without_its_time_column_is_one_line_at_the_command_line(tmp_path):
    path = made.monthly_csv(tmp_path / "a.csv", made.seasonal(60))
    assert_one_line_error(cli_in_process("--task=recurrent", f"--dataset={path}", "--time_column=date",
                                         "--label_column=passengers", f"--output_dir={tmp_path}"),
                          "--time_column=date", "has no such column: its columns are month, passengers")


def test_dlpipe_serve_answers_a_window_as_the_saved_model_does(stores):
    import tensorflow as tf

    from tests.e2e.test_server import call
    from tests.loopback import serving
    root, _ = stores
    window = np.random.default_rng(0).normal(30, 5, (2, 14, 2)).astype(np.float32)  # units and price, 14 days
    with serving(root) as base:
        status, answer = call(f"{base}/v1/models/conv:predict", {"instances": window.tolist()})
    assert status == 200, answer
    saved = tf.saved_model.load(str(root / "conv" / "saved_model")).signatures["serving_default"]
    expected = {name: value.numpy() for name, value in saved(window=tf.constant(window)).items()}
    assert set(expected) == {"forecast", "lower", "upper"} and "classifications" not in answer  # TF Serving's rows
    for name, value in expected.items():
        np.testing.assert_allclose([row[name] for row in answer["predictions"]], value, rtol=1e-5, atol=1e-6)
    assert np.array(answer["predictions"][0]["forecast"]).shape == (7,)
