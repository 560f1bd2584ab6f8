"""SageMaker out: `--sagemaker` packs the SavedModel as model.tar.gz in the layout SageMaker's TensorFlow Serving
container loads, verify runs it unpacked, and `dlpipe-serve --sagemaker` answers the container contract (GET /ping,
POST /invocations with JSON or CSV) on 127.0.0.1, called with a plain HTTP client, as the SavedModel does."""

import json
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from pipelines import runner, sagemaker
from pipelines.families import forecaster
from tests import series as made
from tests.conftest import assert_one_line_error, config_from_flags
from tests.loopback import serving


def post(url: str, body: bytes, content_type: str):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def people_csv(path) -> str:
    rng = np.random.default_rng(0)
    rows = ["age,fare,sex,survived"]
    for _ in range(300):
        age, fare, sex = rng.integers(1, 80), rng.lognormal(3, 1), rng.choice(["male", "female"])
        rows.append(f"{age},{fare:.2f},{sex},{int((sex == 'female') + rng.normal(0, 0.4) > 0.5)}")
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sagemaker")
    runner.run(config_from_flags(f"--dataset={people_csv(root / 'people.csv')}", "--label_column=survived",
                                 "--epochs=2", "--sagemaker", "--tflite_variants=float32", "--noonnx",
                                 f"--output_dir={root / 'table'}"))
    series = made.monthly_csv(root / "monthly.csv", made.seasonal(120))
    runner.run(config_from_flags(f"--dataset={series}", "--time_column=month", "--label_column=passengers",
                                 "--horizon=3", "--epochs=3", "--sagemaker", "--tflite_variants=float32", "--noonnx",
                                 "--stages=train,evaluate,export", f"--output_dir={root / 'series'}"))
    return root


def test_the_archive_holds_the_saved_model_under_a_version_and_verifies_unpacked(runs):
    task_dir = runs / "table" / "dense"
    with tarfile.open(task_dir / sagemaker.ARCHIVE) as tar:
        names = set(tar.getnames())
    assert {"1/saved_model.pb", "1/variables/variables.index", "labels.txt"} <= names
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["exports"]["sagemaker"]["passed"] and report["exports"]["sagemaker"]["max_abs_diff"] <= 1e-4


def test_the_server_answers_the_container_contract_as_the_saved_model_does(runs, tmp_path):
    unpacked = sagemaker.unpack(str(runs / "series" / "dense" / sagemaker.ARCHIVE), str(tmp_path / "opt_ml_model"))
    window = made.seasonal(120)[-24:]
    serve = tf.saved_model.load(str(runs / "series" / "dense" / "saved_model")).signatures["serving_default"]
    expected = serve(window=tf.constant(window[None, :, None], tf.float32))
    assert set(expected) == {"forecast", "lower", "upper"}  # the archive's SavedModel carries the intervals
    with serving(tmp_path, "--sagemaker", f"--model_dir={unpacked}") as base:
        with urllib.request.urlopen(f"{base}/ping", timeout=10) as response:
            assert response.status == 200
        status, answer = post(f"{base}/invocations", json.dumps({"instances": [window[:, None].tolist()]}).encode(),
                              "application/json")
        assert status == 200
        for name, value in expected.items():  # TF Serving's rows: each output by name
            np.testing.assert_allclose(answer["predictions"][0][name], value.numpy()[0], rtol=1e-5)
        status, answer = post(f"{base}/invocations", (",".join(f"{v:.6f}" for v in window) + "\n").encode(),
                              "text/csv")
        assert status == 200
        np.testing.assert_allclose(answer["predictions"][0]["forecast"], expected["forecast"].numpy()[0], rtol=1e-4)
        status, answer = post(f"{base}/invocations", b"1,2,x\n", "text/csv")
        assert status == 400 and "is not a number" in answer["error"]


def test_dlpipe_serve_answers_a_forecast_with_its_intervals(runs):
    """A forecaster's run measured its intervals (metrics.json): dlpipe-serve adds each example's bounds at every
    level, the forecast ± the half-widths dlpipe-predict --interval uses, as wide as each window is spread (the
    second window is the first stretched threefold about its mean)."""
    window = made.seasonal(120)[-24:]
    windows = np.stack([window, 3 * window - 2 * window.mean()])
    intervals = forecaster.Intervals.from_metrics(json.loads((runs / "series" / "dense" / "metrics.json").read_text()))
    with serving(runs / "series") as base:
        status, answer = post(f"{base}/v1/models/dense:predict",
                              json.dumps({"instances": windows[..., None].tolist()}).encode(), "application/json")
    assert status == 200 and len(answer["intervals"]) == 2 and set(answer["intervals"][0]) == set(
        intervals.multiples) == {"0.5", "0.8", "0.9", "0.95"}
    for i, served in enumerate(answer["predictions"]):  # the SavedModel's forecast and bounds, levels in order
        forecast = np.array(served["forecast"])
        for j, (level, bounds) in enumerate(sorted(answer["intervals"][i].items(), key=lambda item: float(item[0]))):
            widths = intervals.halfwidths(windows, level)[i]
            np.testing.assert_allclose(bounds["lower"], forecast - widths, rtol=1e-5)
            np.testing.assert_allclose(bounds["upper"], forecast + widths, rtol=1e-5)
            np.testing.assert_allclose(served["lower"][j], bounds["lower"], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(served["upper"][j], bounds["upper"], rtol=1e-5, atol=1e-5)
    first, second = (np.subtract(answer["intervals"][i]["0.8"]["upper"], answer["intervals"][i]["0.8"]["lower"])
                     for i in range(2))
    np.testing.assert_allclose(second, 3 * first, rtol=1e-4)


def test_a_model_whose_family_measures_no_intervals_is_served_without_them(runs):
    """The intervals come from the family each run's config.json records: the table's (a classifier) has none, so
    its answers carry no bounds, while the forecaster's above do."""
    with serving(runs / "table") as base:
        status, answer = post(f"{base}/v1/models/dense:predict",
                              json.dumps({"instances": [{"age": 30.0, "fare": 12.5, "sex": "female"}]}).encode(),
                              "application/json")
    assert status == 200 and len(answer["predictions"]) == 1 and "intervals" not in answer


def test_a_table_takes_csv_rows_under_a_header_naming_its_columns(runs, tmp_path):
    task_dir = runs / "table" / "dense"
    unpacked = sagemaker.unpack(str(task_dir / sagemaker.ARCHIVE), str(tmp_path / "model"))
    with serving(tmp_path, "--sagemaker", f"--model_dir={unpacked}") as base:
        status, answer = post(f"{base}/invocations", b"age,fare,sex\n30,12.5,female\n30,12.5,male\n", "text/csv")
        assert status == 200 and len(answer["predictions"]) == 2
        assert {c["label"] for c in answer["classifications"]} <= {"0", "1"}  # labels.txt from the archive
        status, answer = post(f"{base}/invocations", b"age,cabin\n30,C85\n", "text/csv")
        assert status == 400 and "cabin are not among them" in answer["error"]
    # Without the flag the same command leaves no archive of another model behind.
    runner.run(config_from_flags(f"--dataset={runs / 'people.csv'}", "--label_column=survived", "--epochs=2",
                                 "--tflite_variants=float32", "--noonnx", "--stages=train,export",
                                 f"--output_dir={runs / 'table'}"))
    assert not (task_dir / sagemaker.ARCHIVE).exists()


def test_a_model_dir_without_a_saved_model_is_one_line(tmp_path):
    import subprocess
    import sys
    from tests.loopback import ROOT
    result = subprocess.run([sys.executable, "-m", "pipelines.server", "--sagemaker", f"--model_dir={tmp_path}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, f"--model_dir={tmp_path} holds no SavedModel", "1/saved_model.pb")
