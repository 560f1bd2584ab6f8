"""The dense pipeline end to end through the command line, on a subset of the real offline Fashion-MNIST."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tests.conftest import REAL_IDX_DIR, run_cli

QUICK = ["--task=dense", "--max_train_examples=3000", "--max_test_examples=1000", "--epochs=2",
         f"--idx_dir={REAL_IDX_DIR}"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("runs")
    result = run_cli(*QUICK, f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir / "dense", result.stdout


def load(path):
    return json.loads(path.read_text())


def test_every_stage_leaves_its_artifacts(run_dir):
    task_dir, _ = run_dir
    for name in ("config.json", "model.keras", "history.json", "metrics.json", "model.tflite", "verify.json",
                 "saved_model/saved_model.pb"):
        assert (task_dir / name).is_file(), name
    assert len(os.listdir(task_dir / "checkpoints")) == 2
    assert os.listdir(task_dir / "logs")
    assert not [name for name in os.listdir(task_dir) if ".tmp" in name]


def test_config_json_records_every_flag_value(run_dir):
    config = load(run_dir[0] / "config.json")
    assert config["epochs"] == 2 and config["max_train_examples"] == 3000
    assert config["hparams"] == {"hidden_units": [128], "dropout": 0.0}


def test_model_learns_and_evaluate_reports_on_the_test_subset(run_dir):
    metrics = load(run_dir[0] / "metrics.json")
    assert metrics["num_test_examples"] == 1000
    assert metrics["test_accuracy"] > 0.7  # chance is 0.1; 2 epochs on 2700 images reach ~0.78
    assert len(load(run_dir[0] / "history.json")["val_accuracy"]) == 2


def test_exported_models_match_keras_and_tflite_accuracy_matches(run_dir):
    task_dir, _ = run_dir
    report = load(task_dir / "verify.json")
    assert report["passed"] and report["parity_examples"] >= 256
    assert report["tflite_max_abs_diff"] <= 1e-4 and report["saved_model_max_abs_diff"] <= 1e-4
    assert report["num_test_examples"] == 1000
    assert abs(report["tflite_test_accuracy"] - load(task_dir / "metrics.json")["test_accuracy"]) <= 0.002


def test_serving_signature_is_named_image_to_logits(run_dir):
    signature = tf.saved_model.load(str(run_dir[0] / "saved_model")).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["image"]
    assert list(signature.structured_outputs) == ["logits"]


def test_tflite_file_runs_in_litert_on_raw_pixels(run_dir):
    interpreter = Interpreter(model_path=str(run_dir[0] / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], np.full((1, 28, 28, 1), 255, np.float32))
    interpreter.invoke()
    assert interpreter.get_tensor(out["index"]).shape == (1, 10)


def test_summary_table_names_every_stage(run_dir):
    _, stdout = run_dir
    summary = stdout[stdout.index("artifacts in"):].splitlines()
    assert [line.split()[0] for line in summary[2:6]] == ["train", "evaluate", "export", "verify"]
    assert "test_accuracy=" in summary[3] and "tflite_accuracy=" in summary[5]


def test_a_later_stage_alone_reuses_the_trained_model(run_dir):
    task_dir, _ = run_dir
    trained = (task_dir / "model.keras").stat().st_mtime_ns
    result = run_cli(*QUICK, f"--output_dir={task_dir.parent}", "--stages=export,verify")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (task_dir / "model.keras").stat().st_mtime_ns == trained
    assert "[1/2] export" in result.stdout and load(task_dir / "verify.json")["passed"]
