"""What a forecaster's default run ships (issues 39 and 40): an int16x8 file that forecasts a trend beyond its train
range, and a short quarterly series of small values that runs every stage and exits 0."""

import json

import numpy as np

from pipelines import artifacts, runner
from tests import series as made
from tests.conftest import config_from_flags


def metrics_of(folder) -> dict:
    return json.load(open(folder / artifacts.METRICS))


def test_the_default_forecaster_ships_an_int16x8_file_that_forecasts_a_trend_beyond_its_train_range(tmp_path):
    """The test period of a trending series lies above every value the train period had: a file calibrated on
    train windows alone clips it (its RMSE was 2.2× the float model's on AirPassengers)."""
    from pipelines.exported import TFLiteModel
    values = made.seasonal()
    path = made.monthly_csv(tmp_path / "trend.csv", values)
    records = runner.run(config_from_flags(f"--dataset={path}", "--time_column=month", "--label_column=passengers",
                                           "--horizon=12", f"--output_dir={tmp_path}"))
    exports = json.load(open(tmp_path / "dense" / artifacts.VERIFY))["exports"]
    assert "int8" not in exports and exports["int16x8"]["passed"] and exports["int16x8"].get("shipped", True)
    assert exports["int16x8"]["test_rmse"] < 1.1 * exports["keras"]["test_rmse"]
    window = values[-24:].astype(np.float32)[None, :, None]
    assert window.max() > values[:int(0.7 * len(values))].max() + 20  # beyond the train period's range
    test_rmse = json.load(open(tmp_path / "dense" / artifacts.METRICS))["test_rmse"]
    tflite = TFLiteModel(str(tmp_path / "dense" / "model_int16x8.tflite"))
    forecast = tflite({"window": window})
    reference = TFLiteModel(str(tmp_path / "dense" / "model.tflite"))({"window": window})
    assert forecast.shape == (1, 12) and np.abs(forecast - reference).mean() < 0.1 * test_rmse
    assert "verify" in [r.stage for r in records]


def test_the_exported_files_return_the_interval_bounds_dlpipe_predict_gives_and_a_new_evaluation_makes_them_stale(
        tmp_path):
    """The SavedModel, the float TFLite files and ONNX return `lower` and `upper` [levels, horizon] beside the
    forecast: the window's spread times metrics.json's multiples, as dlpipe-predict --interval computes them, held to
    Keras by verify. They are made from metrics.json, so an evaluation that changes it withdraws them."""
    import tensorflow as tf
    from pipelines.exporters import OnnxModel
    from pipelines.exported import TFLiteModel
    from pipelines.families.forecaster import Intervals
    values = made.seasonal(120)
    path = made.monthly_csv(tmp_path / "monthly.csv", values)
    flags = (f"--dataset={path}", "--time_column=month", "--label_column=passengers", "--horizon=3", "--epochs=3",
             f"--output_dir={tmp_path}")
    runner.run(config_from_flags(*flags))
    folder = tmp_path / "dense"
    intervals = Intervals.from_metrics(metrics_of(folder))
    windows = np.stack([values[-24:], 3 * values[-24:] - 2 * values[-24:].mean()]).astype(np.float32)[..., None]
    levels = sorted(intervals.multiples, key=float)
    serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serving_default"]
    served = {name: value.numpy() for name, value in serve(window=tf.constant(windows)).items()}
    files = {"saved_model": served, "model.onnx": OnnxModel(str(folder / "model.onnx")).named({"window": windows}),
             **{name: TFLiteModel(str(folder / name)).named({"window": windows})
                for name in ("model.tflite", "model_float16.tflite")}}
    for name, outputs in files.items():
        assert outputs["lower"].shape == outputs["upper"].shape == (2, 4, 3), name
        for j, level in enumerate(levels):  # what dlpipe-predict --interval adds, from the file's own forecast
            widths = intervals.halfwidths(windows, level)
            np.testing.assert_allclose(outputs["lower"][:, j], outputs["forecast"] - widths, rtol=1e-3, atol=1e-2)
            np.testing.assert_allclose(outputs["upper"][:, j], outputs["forecast"] + widths, rtol=1e-3, atol=1e-2)
    assert set(TFLiteModel(str(folder / "model_int16x8.tflite")).named({"window": windows})) == {"forecast"}
    exports = json.load(open(folder / artifacts.VERIFY))["exports"]
    assert all(exports[name]["beside"]["outputs"] == ["lower", "upper"] for name in ("savedmodel", "float32", "onnx"))
    # A new evaluation (fewer test windows: other multiples) leaves no exported file made from the old metrics.
    runner.run(config_from_flags(*flags, "--stages=evaluate", "--max_test_examples=4"))
    assert Intervals.from_metrics(metrics_of(folder)).multiples != intervals.multiples
    assert not (folder / "saved_model").exists() and not (folder / "model.tflite").exists()
    runner.run(config_from_flags(*flags, "--stages=export,verify", "--max_test_examples=4"))
    assert json.load(open(folder / artifacts.VERIFY))["passed"]


def test_a_short_quarterly_series_of_small_values_ships_with_the_defaults(tmp_path):
    """The issue's quarterly series lost its default run at verify: float files judged by a difference relative to
    values near zero. Judged against the test RMSE, every float file passes and the run ends with its report."""
    rng = np.random.default_rng(4)
    t = np.arange(72)
    values = 0.02 + 0.0004 * t + 0.006 * np.sin(np.pi * t / 2) + rng.normal(0, 0.001, len(t))
    dates = [f"{2000 + q // 4}-{3 * (q % 4) + 1:02d}-01" for q in t]
    path = made.write(tmp_path / "quarterly.csv", ["quarter", "rate"], zip(dates, np.round(values, 5)))
    records = runner.run(config_from_flags(f"--dataset={path}", "--time_column=quarter", "--label_column=rate",
                                           "--horizon=4", f"--output_dir={tmp_path}"))
    assert [r.stage for r in records] == ["train", "evaluate", "export", "verify", "report"]
    metrics = metrics_of(tmp_path / "dense")
    assert metrics["season"] == 4 and metrics["forecaster"] in ("network", "linear", "arima", "mean")
    exports = json.load(open(tmp_path / "dense" / artifacts.VERIFY))
    assert exports["passed"] and all(exports["exports"][f]["passed"] for f in ("savedmodel", "float32", "onnx"))
    report = (tmp_path / "dense" / artifacts.REPORT).read_text()
    assert "validation windows" in report
    assert metrics["refit"] == (["arima"] if "arima" in metrics["members"] else [])  # AutoARIMA ships refit
    assert ("arima ships fitted on every row of the file" in report) == bool(metrics["refit"])
    assert metrics["forecaster_rule"] == "mean" and "--forecaster=arima" not in report
