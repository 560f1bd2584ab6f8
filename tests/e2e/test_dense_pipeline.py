"""The dense pipeline end to end through the command line, on a subset of the real offline Fashion-MNIST."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import metadata
from pipelines.metadata.generated.metadata_schema_generated import AssociatedFileType, ColorSpaceType
from tests.conftest import REAL_IDX_DIR, assert_one_line_error, cli_in_process, run_cli

QUICK = ["--task=dense", "--max_train_examples=3000", "--max_test_examples=1000", "--epochs=2",
         f"--idx_dir={REAL_IDX_DIR}", "--tflite_variants=float32,float16,int8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("runs")
    result = run_cli(*QUICK, f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    (output_dir / "stderr.txt").write_text(result.stderr)
    return output_dir / "dense", result.stdout


# What a default run printed from CUDA's probing, TensorFlow's start-up, the SavedModel writer, the converter and
# LiteRT before it was hidden (the output a user reads is the package's own lines and Keras' progress).
NOISE = ("cudart_stub", "cuInit", "oneDNN", "Type is unsupported", "'NoneType' object has no attribute 'name'",
         "meta_graph.py", "fully_quantize:", "XNNPACK", "absl::InitializeLog")


def test_a_run_prints_its_stages_and_progress_and_none_of_the_libraries_chatter(run_dir):
    task_dir, stdout = run_dir
    stderr = (task_dir.parent / "stderr.txt").read_text()
    assert not [line for line in stderr.splitlines() if any(noise in line for noise in NOISE)], stderr
    assert "── [1/5] train" in stdout and "Epoch 2/2" in stdout  # Keras' line per epoch (no terminal here)
    assert "  TFLite int8: int8 weights" in stdout and "  model_int8.tflite in LiteRT" in stdout
    assert "precision float32 (auto: this task trains in float32" in stdout


def load(path):
    return json.loads(path.read_text())


def test_every_stage_leaves_its_artifacts(run_dir):
    task_dir, _ = run_dir
    for name in ("config.json", "model.keras", "history.json", "metrics.json", "model.tflite", "model_float16.tflite",
                 "labels.txt", "export_report.json", "export_report.md", "saved_model/saved_model.pb"):
        assert (task_dir / name).is_file(), name
    assert len(os.listdir(task_dir / "checkpoints")) == 2
    assert os.listdir(task_dir / "logs")
    assert not [name for name in os.listdir(task_dir) if ".tmp" in name]


def test_config_json_records_what_the_model_was_trained_with(run_dir):
    config = load(run_dir[0] / "config.json")
    assert config["epochs"] == 2 and config["max_train_examples"] == 3000 and config["seed"] == 42
    assert config["hparams"] == {"hidden_units": [128], "dropout": 0.0}
    assert "tflite_variants" not in config and "output_dir" not in config  # not what the model is


def test_model_learns_and_evaluate_reports_on_the_test_subset(run_dir):
    metrics = load(run_dir[0] / "metrics.json")
    assert metrics["num_test_examples"] == 1000
    assert metrics["test_accuracy"] > 0.7  # chance is 0.1; 2 epochs on 2700 images reach ~0.78
    assert len(load(run_dir[0] / "history.json")["val_accuracy"]) == 2


def test_exported_models_match_keras_and_tflite_accuracy_matches(run_dir):
    task_dir, _ = run_dir
    report = load(task_dir / "export_report.json")
    exports = report["exports"]
    assert report["passed"] and report["parity_examples"] >= 256 and report["num_test_examples"] == 1000
    assert exports["float32"]["max_abs_diff"] <= 1e-4 and exports["savedmodel"]["max_abs_diff"] <= 1e-4
    assert exports["float16"]["max_abs_diff"] <= 1e-2
    keras_accuracy = load(task_dir / "metrics.json")["test_accuracy"]
    assert exports["keras"]["test_accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    assert abs(exports["float32"]["test_accuracy"] - keras_accuracy) <= 0.002
    assert exports["float16"]["size_bytes"] < 0.6 * exports["float32"]["size_bytes"]
    assert all(exports[v]["latency_ms"] > 0 for v in ("keras", "float32", "float16"))
    assert (task_dir / "labels.txt").read_text().splitlines()[0] == "T-shirt/top"


def test_serving_signature_takes_uint8_image_and_returns_logits(run_dir):
    signature = tf.saved_model.load(str(run_dir[0] / "saved_model")).signatures["serving_default"]
    (image,) = signature.structured_input_signature[1].values()
    assert image.name == "image" and image.dtype == tf.uint8 and image.shape.as_list() == [None, 28, 28, 1]
    assert list(signature.structured_outputs) == ["logits"]


def test_saved_model_cli_shows_the_signature_names(run_dir):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", str(run_dir[0] / "saved_model"), "--tag_set", "serve",
                            "--signature_def", "serving_default"], capture_output=True, text=True, check=True).stdout
    assert "inputs['image']" in shown and "DT_UINT8" in shown and "outputs['logits']" in shown


def test_tflite_file_takes_a_camera_rgb_frame_and_returns_probabilities(run_dir):
    """A gray RGB frame (equal channels) gives the grayscale Keras model's own probabilities."""
    task_dir = run_dir[0]
    runner = Interpreter(model_path=str(task_dir / "model.tflite")).get_signature_runner()
    gray = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    (name, probabilities), = runner(image=np.repeat(gray, 3, axis=-1)).items()
    keras_model = tf.keras.models.load_model(task_dir / "model.keras")
    assert name == "probabilities"
    np.testing.assert_allclose(probabilities, tf.nn.softmax(keras_model(gray.astype(np.float32))), atol=1e-5)


def test_every_tflite_file_carries_metadata_with_its_labels(run_dir):
    task_dir = run_dir[0]
    for file in ("model.tflite", "model_float16.tflite"):
        info, packed = metadata.read_metadata((task_dir / file).read_bytes())
        assert packed == {"labels.txt": (task_dir / "labels.txt").read_bytes()}
        (subgraph,) = info.subgraphMetadata
        (image,), (output,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
        assert image.name == b"image" and image.content.contentProperties.colorSpace == ColorSpaceType.RGB
        assert list(image.stats.min) == [0] and list(image.stats.max) == [255]
        assert output.name == b"probabilities" and output.associatedFiles[0].name == b"labels.txt"
        assert output.associatedFiles[0].type == AssociatedFileType.TENSOR_AXIS_LABELS
        assert b"float16" in info.description if "float16" in file else b"float32" in info.description


def test_summary_table_names_every_stage(run_dir):
    _, stdout = run_dir
    summary = stdout[stdout.index("artifacts in"):].splitlines()
    assert [line.split()[0] for line in summary[2:7]] == ["train", "evaluate", "export", "verify", "report"]
    assert "test_accuracy=" in summary[3] and "tflite_accuracy=" in summary[5]


def test_a_later_stage_alone_reuses_the_trained_model(run_dir):
    task_dir, _ = run_dir
    trained = (task_dir / "model.keras").stat().st_mtime_ns
    result = cli_in_process(*QUICK, f"--output_dir={task_dir.parent}", "--stages=export,verify")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (task_dir / "model.keras").stat().st_mtime_ns == trained
    assert "[1/2] export" in result.stdout and load(task_dir / "export_report.json")["passed"]


def test_quantized_variants_are_measured_and_a_miss_fails_the_stage_in_one_line(run_dir, tmp_path):
    """int8 and dynamic range on the 2-epoch model: sizes, int8 input parameters, agreement; 99% is the bar, less
    what chance gives a file at the bar (stages/verify.allowed_misses)."""
    from pipelines.stages.verify import allowed_misses
    task_dir, _ = run_dir
    float32 = (task_dir / "model.tflite").read_bytes()
    result = cli_in_process(*QUICK[:-1], f"--output_dir={task_dir.parent}", "--stages=export,verify",
                            "--tflite_variants=float32,dynamic_range,int8")
    exports = load(task_dir / "export_report.json")["exports"]
    assert exports["int8"]["size_bytes"] <= 0.3 * exports["float32"]["size_bytes"]
    # Camera bytes as they come: uint8 with scale 1 and zero point 0.
    assert exports["int8"]["inputs"]["image"] == {"dtype": "uint8", "scale": 1.0, "zero_point": 0}
    assert abs(exports["int8"]["accuracy_drop"]) <= 0.01
    labels = (task_dir / "labels.txt").read_text().splitlines()
    assert set(exports["int8"]["per_class_accuracy_change"]) == set(labels)  # which class int8 hurts, by name
    assert exports["int8"]["agreement_examples"] == 1024  # 1,000 test inputs, topped up to the parity batch
    missed = [v for v in ("dynamic_range", "int8") if round((1 - exports[v]["top1_agreement"]) * 1024)
              > allowed_misses(1024, 0.99)]
    assert [v for v in ("dynamic_range", "int8") if not exports[v]["passed"]] == missed
    if missed:
        assert_one_line_error(result, "exports miss their limits", missed[0], "--tflite_variants")
    else:
        assert result.returncode == 0, result.stderr[-2000:]
    assert (task_dir / "model.tflite").read_bytes() == float32  # same model, same float32 file


def test_onnx_is_verified_in_onnxruntime_and_noonnx_removes_it(run_dir):
    task_dir, _ = run_dir
    onnx = load(task_dir / "export_report.json")["exports"]["onnx"]
    assert onnx["passed"] and onnx["max_abs_diff"] <= 1e-4 and onnx["top1_agreement"] == 1.0
    result = cli_in_process(*QUICK, f"--output_dir={task_dir.parent}", "--stages=export,verify", "--noonnx")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (task_dir / "model.onnx").exists() and "onnx" not in load(task_dir / "export_report.json")["exports"]


def test_evaluate_writes_per_class_numbers_that_add_up_and_its_pictures(run_dir):
    task_dir, _ = run_dir
    metrics = load(task_dir / "metrics.json")
    assert metrics["labels"] == (task_dir / "labels.txt").read_text().splitlines()
    per_class, counts = metrics["per_class"], np.array(metrics["confusion_matrix"])
    assert sum(row["support"] for row in per_class.values()) == counts.sum() == 1000
    # Accuracy is the support-weighted recall, and the matrix's diagonal share.
    recall = sum(row["recall"] * row["support"] for row in per_class.values()) / 1000
    assert recall == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert np.trace(counts) / counts.sum() == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    for picture in ("training_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert (task_dir / picture).read_bytes().startswith(b"\x89PNG"), picture
    assert not (task_dir / "predictions.png").exists()  # a regressor's


def test_report_md_ties_the_run_together_and_every_link_resolves(run_dir):
    task_dir, _ = run_dir
    # Earlier tests re-exported, which removed the report made from the exports they replaced: it is made again.
    result = cli_in_process(*QUICK, f"--output_dir={task_dir.parent}", "--stages=report")
    assert result.returncode == 0, result.stderr[-2000:]
    report = (task_dir / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert {"model.tflite", "confusion_matrix.png", "training_curves.png", "export_report.json"} <= set(links)
    assert all((task_dir / link).exists() for link in links)
    assert "| Shirt |" in report and "| float16 |" in report and "every export passed" in report


def test_the_numpy_trainer_ships_its_network_through_evaluate_export_and_verify(tmp_path):
    from pipelines import runner
    from tests.conftest import config_from_flags
    config = config_from_flags("--task=dense", "--trainer=numpy", "--max_train_examples=3000",
                               "--max_test_examples=1000", "--epochs=3", "--hidden_units=64", "--noonnx",
                               "--tflite_variants=float32", f"--output_dir={tmp_path}")
    assert config.learning_rate == 0.05  # SGD's default, not Adam's
    records = {r.stage: r.result for r in runner.run(config)}
    task_dir = tmp_path / "dense"
    history = load(task_dir / "history.json")
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert load(task_dir / "metrics.json")["test_accuracy"] > 0.7
    assert "1 exports passed" in records["verify"]
    assert set(os.listdir(task_dir / "logs")) == {"train", "validation"}  # TensorBoard, Keras' layout
    assert not (task_dir / "checkpoints").exists()


def test_the_numpy_trainer_takes_the_dense_task_only():
    from tests.conftest import parse_cli
    assert_one_line_error(parse_cli("--task=conv", "--trainer=numpy"),
                          "--trainer=numpy trains the tasks that have a NumPy network (dense)", "--task=conv")
