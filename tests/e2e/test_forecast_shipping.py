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
