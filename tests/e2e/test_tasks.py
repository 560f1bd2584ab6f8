"""Every task × data set runs train → evaluate → export → verify through the same runner.

Fashion-MNIST is the real offline data (a subset); mnist, cifar10 and imdb_reviews are TFDS' mock examples.
"""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from ai_edge_litert.interpreter import Interpreter

from pipelines import runner
from tests.conftest import config_from_flags

QUICK = ("--epochs=1", "--max_train_examples=640", "--max_test_examples=320")


def run_pipeline(tmp_path, *flags: str, mock: bool = False):
    config = config_from_flags(*QUICK, f"--output_dir={tmp_path}", f"--data_dir={tmp_path}/tfds", *flags)
    if mock:
        with tfds.testing.mock_data(num_examples=64):
            runner.run(config)
    else:
        runner.run(config)
    task_dir = tmp_path / config.task
    report = json.loads((task_dir / "verify.json").read_text())
    assert report["passed"] and report["tflite_max_abs_diff"] <= 1e-4
    return task_dir, report


def tflite_input(task_dir):
    interpreter = Interpreter(model_path=str(task_dir / "model.tflite"))
    (detail,) = interpreter.get_input_details()
    return tuple(detail["shape_signature"][1:]), detail["dtype"]


def assert_builtin_ops_only(task_dir):
    # Flex ops are stored as custom ops named "Flex…"; LiteRT's pip interpreter has no delegate for them.
    assert b"Flex" not in (task_dir / "model.tflite").read_bytes()


@pytest.mark.parametrize("task,dataset,shape", [
    ("dense", "mnist", (28, 28, 1)),
    ("dense", "cifar10", (32, 32, 3)),
    ("conv", "mnist", (28, 28, 1)),
    ("conv", "cifar10", (32, 32, 3)),
    ("recurrent", "mnist", (28, 28)),
    ("recurrent", "cifar10", (32, 96)),
])
def test_online_image_data_sets_take_their_shape_from_tfds_info(tmp_path, task, dataset, shape):
    task_dir, report = run_pipeline(tmp_path, f"--task={task}", f"--dataset={dataset}", "--rnn_units=16"
                                    if task == "recurrent" else "--dropout=0.1", mock=True)
    assert tflite_input(task_dir)[0] == shape
    assert report["num_test_examples"] == 64


def test_conv_on_offline_fashion_mnist_exports_without_augmentation(tmp_path):
    task_dir, report = run_pipeline(tmp_path, "--task=conv", "--conv_filters=16,32", "--augment", "--epochs=3")
    # Chance is 0.1. Few steps leave BatchNorm's moving statistics far from settled, so the bar is low here;
    # the default run's accuracy is measured in the README.
    assert report["tflite_test_accuracy"] > 0.4
    assert_builtin_ops_only(task_dir)
    # Augmentation is random in training; an exported model must answer the same image the same way twice.
    interpreter = Interpreter(model_path=str(task_dir / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    image = np.random.default_rng(0).uniform(0, 255, (1, 28, 28, 1)).astype(np.float32)
    answers = []
    for _ in range(2):
        interpreter.set_tensor(inp["index"], image)
        interpreter.invoke()
        answers.append(interpreter.get_tensor(out["index"]).copy())
    np.testing.assert_array_equal(*answers)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_each_cell_stacked_and_bidirectional_runs_in_litert_with_builtin_ops(tmp_path, cell):
    task_dir, _ = run_pipeline(tmp_path, "--task=recurrent", f"--cell={cell}", "--bidirectional",
                               "--rnn_layers=2", "--rnn_units=16")
    assert_builtin_ops_only(task_dir)
    assert tflite_input(task_dir) == ((28, 28), np.float32)


def test_text_saved_model_takes_strings_and_tflite_takes_token_ids_with_the_vocabulary_beside(tmp_path):
    import tensorflow as tf
    task_dir, report = run_pipeline(tmp_path, "--task=recurrent", "--dataset=imdb_reviews", "--rnn_units=16",
                                    "--sequence_length=24", mock=True)
    assert_builtin_ops_only(task_dir)
    assert tflite_input(task_dir) == ((24,), np.int64)
    vocabulary = (task_dir / "vocab.txt").read_text().split("\n")
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) > 10
    serve = tf.saved_model.load(str(task_dir / "saved_model")).signatures["serving_default"]
    (logits,) = serve(text=tf.constant(["a fine film", "dull"])).values()
    assert logits.shape == (2, 2)
    assert report["saved_model_max_abs_diff"] <= 1e-4
