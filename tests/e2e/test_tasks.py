"""Every task × data set runs train → evaluate → export → verify through the same runner.

Fashion-MNIST is the real offline data (a subset); mnist and cifar10 are TFDS' mock examples. What the text models
ship (strings in the SavedModel, token ids and the vocabulary in TFLite) is checked on a text folder in
test_own_data; imdb_reviews' loading in tests/data/test_sources.
"""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from ai_edge_litert.interpreter import Interpreter

from pipelines import metadata, runner
from pipelines.stages.verify import UNDERTRAINED_CLEAR_FRACTION, passes
from pipelines.tasks import TASKS
from tests.conftest import config_from_flags

GAN_VARIANTS = TASKS["gan"].default_variants
MOCK_EXAMPLES = 128  # per split: verify judges exports on at least 100 test examples
QUICK = ("--epochs=1", "--max_train_examples=640", "--max_test_examples=320", "--tflite_variants=float32", "--noonnx")


def run_pipeline(tmp_path, *flags: str, mock: bool = False):
    config = config_from_flags(*QUICK, f"--output_dir={tmp_path}", f"--data_dir={tmp_path}/tfds", *flags)
    if mock:
        with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
            runner.run(config)
    else:
        runner.run(config)
    task_dir = tmp_path / config.task
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and report["exports"]["float32"]["passed"]
    if config.task != "gan":
        assert report["exports"]["float32"]["limit"] == ["max_abs_diff", 1e-4]
    return task_dir, report


def tflite_input(task_dir):
    interpreter = Interpreter(model_path=str(task_dir / "model.tflite"))
    (detail,) = interpreter.get_input_details()
    return tuple(detail["shape_signature"][1:]), detail["dtype"]


def assert_builtin_ops_only(task_dir):
    # Flex ops are stored as custom ops named "Flex…"; LiteRT's pip interpreter has no delegate for them.
    assert b"Flex" not in (task_dir / "model.tflite").read_bytes()


# The TFLite files of every image model take RGB frames as a camera gives them, whatever the data's channels.
@pytest.mark.parametrize("task,dataset,shape", [
    ("dense", "mnist", (28, 28, 3)),
    ("dense", "cifar10", (32, 32, 3)),
    ("conv", "mnist", (28, 28, 3)),
    ("conv", "cifar10", (32, 32, 3)),
])
def test_online_image_data_sets_take_their_shape_from_tfds_info(tmp_path, task, dataset, shape):
    task_dir, report = run_pipeline(tmp_path, f"--task={task}", f"--dataset={dataset}", "--rnn_units=16"
                                    if task == "recurrent" else "--dropout=0.1", mock=True)
    assert tflite_input(task_dir)[0] == shape
    assert report["num_test_examples"] == MOCK_EXAMPLES


def test_any_tfds_image_set_runs_through_the_runner_resized_to_image_size(tmp_path):
    task_dir, report = run_pipeline(tmp_path, "--task=conv", "--dataset=tfds:tf_flowers", "--image_size=32,32",
                                    "--conv_filters=8,16", mock=True)
    assert tflite_input(task_dir) == ((32, 32, 3), np.uint8)
    assert (task_dir / "labels.txt").read_text().splitlines()[0] == "dandelion"
    assert report["num_test_examples"] == MOCK_EXAMPLES


def test_conv_on_offline_fashion_mnist_exports_without_augmentation(tmp_path):
    # Accuracy is not judged here: a few steps leave BatchNorm's moving statistics near their initial values.
    # The default run's accuracy is measured in the README.
    task_dir, _ = run_pipeline(tmp_path, "--task=conv", "--conv_filters=16,32", "--augment=flip_translate")
    assert_builtin_ops_only(task_dir)
    # Augmentation is random in training; an exported model must answer the same image the same way twice.
    interpreter = Interpreter(model_path=str(task_dir / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    image = np.random.default_rng(0).uniform(0, 255, (1, 28, 28, 3)).astype(np.uint8)
    answers = []
    for _ in range(2):
        interpreter.set_tensor(inp["index"], image)
        interpreter.invoke()
        answers.append(interpreter.get_tensor(out["index"]).copy())
    np.testing.assert_array_equal(*answers)


GAN = ("--task=gan", "--epochs=2", "--passes_per_epoch=1", "--batch_size=64", "--onnx", "--generator_widths=32,16",
       "--discriminator_widths=16,32", "--tflite_variants=" + ",".join(GAN_VARIANTS))


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """One GAN run the GAN tests read (each is a full pipeline)."""
    output_dir = tmp_path_factory.mktemp("gan")
    return output_dir, *run_pipeline(output_dir, *GAN)


def test_gan_trains_watches_measures_and_exports_a_uint8_generator(gan_run):
    import tensorflow as tf
    _, task_dir, report = gan_run
    grids = sorted(p.name for p in (task_dir / "samples").iterdir())
    assert grids == ["epoch_001.png", "epoch_002.png"]
    assert tf.io.decode_png((task_dir / "samples" / "epoch_002.png").read_bytes()).shape == (280, 280, 1)
    history = json.loads((task_dir / "history.json").read_text())
    assert {"d_loss", "g_loss", "val_d_loss", "val_g_loss"} <= set(history)

    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["feature_network"]["path"].startswith(str(task_dir / "feature_classifiers"))
    assert len(metrics["class_histogram"]) == 10 and abs(sum(metrics["class_histogram"].values()) - 1) < 1e-6
    # Real images are far closer to the test images than an untrained generator's output, in the classifier's
    # features and in the label-free ones.
    assert metrics["frechet_distance_train_vs_test"] < metrics["frechet_distance_untrained_generator"]
    assert metrics["label_free"]["kid_train_vs_test"] < metrics["label_free"]["kid_untrained_generator"]
    # Whether the samples look like the pictures, all of them, beside what held-out real pictures score.
    coverage = metrics["coverage"]
    assert {"precision", "recall", "diversity", "real_recall", "collapsed"} <= set(coverage)
    assert coverage["real_recall"] > coverage["recall"] or coverage["real_precision"] > coverage["precision"]
    assert "Do the samples look like the pictures" in (task_dir / "report.md").read_text()
    assert report["parity_examples"] >= 256 and report["exports"]["float32"]["limit"] == ["max_abs_diff", 1.0]
    assert report["exports"]["onnx"]["passed"]  # the generator in ONNX Runtime, its noise in, pixels out
    assert all(report["exports"][variant]["passed"] for variant in GAN_VARIANTS)  # the task's default variants

    runner = Interpreter(model_path=str(task_dir / "model.tflite")).get_signature_runner()
    (pixels,) = runner(noise=np.zeros((2, *runner.get_input_details()["noise"]["shape"][1:]), np.float32)).values()
    assert pixels.dtype == np.uint8 and pixels.shape == (2, 28, 28, 1)
    info, packed = metadata.read_metadata((task_dir / "model.tflite").read_bytes())
    assert [t.name for t in info.subgraphMetadata[0].outputTensorMetadata] == [b"pixels"] and packed == {}


def test_gan_measuring_stick_is_keyed_by_data_and_recorded_by_hash(gan_run):
    from pipelines import artifacts
    tmp_path, task_dir, _ = gan_run  # its samples and metrics are read above: this test runs after that one
    stick = json.loads((task_dir / "metrics.json").read_text())["feature_network"]
    # It learned the classes it measures by: twice chance among ten at least (0.34 measured on this small run).
    assert stick["sha256"] == artifacts.content_hash(stick["path"]) and stick["val_accuracy"] > 0.2
    made = os.stat(stick["path"]).st_mtime_ns
    runner.run(config_from_flags(*QUICK, f"--output_dir={tmp_path}", *GAN, "--stages=evaluate", "--force"))
    assert json.loads((task_dir / "metrics.json").read_text())["feature_network"] == stick
    assert os.stat(stick["path"]).st_mtime_ns == made  # reused: same data, same settings
    # Another subset of the data is another measuring stick: a quick run's never measures a full one.
    runner.run(config_from_flags(*QUICK, "--max_train_examples=320", f"--output_dir={tmp_path}", *GAN,
                                 "--stages=train,evaluate"))
    other = json.loads((task_dir / "metrics.json").read_text())["feature_network"]
    assert other["path"] != stick["path"]
    assert len(list((task_dir / "feature_classifiers").glob("*.keras"))) == 2


def test_a_quick_conv_run_passes_verify_in_every_variant(tmp_path, capsys):
    """An undertrained model (1 epoch on 900 images) is unsure of most examples: its quantized variants' misses on
    near-ties are named as the model's, not reported as broken exports."""
    config = config_from_flags("--task=conv", "--epochs=1", "--max_train_examples=1000", "--max_test_examples=300",
                               f"--output_dir={tmp_path}")
    assert config.tflite_variants == ("float32", "dynamic_range", "float16", "int8")
    runner.run(config)
    report = json.loads((tmp_path / "conv" / "export_report.json").read_text())
    assert report["passed"] and report["num_test_examples"] == 300
    assert report["clear_fraction"] < UNDERTRAINED_CLEAR_FRACTION  # what this run is for: an unsure model
    out = capsys.readouterr().out
    for variant, row in report["exports"].items():
        if row.get("limit", [""])[0] != "top1_agreement":
            continue
        within = passes(row, tuple(row["limit"]))  # on every judged example
        assert ("judged_on" in row) == (not within), variant  # re-judged exactly when it misses the limit on all
        assert (f"note: {variant} agrees with Keras on" in out) == (not within), variant
        if not within:
            assert passes({"top1_agreement": row["top1_agreement_clear"],
                           "agreement_examples": round(report["clear_fraction"] * row["agreement_examples"])},
                          tuple(row["limit"]))


def test_the_transformer_on_image_patches_converts_to_builtin_ops_and_onnx(tmp_path):
    task_dir, report = run_pipeline(tmp_path, "--task=transformer", "--model_width=16", "--encoder_layers=1",
                                    "--tflite_variants=float32,float16", "--onnx")
    assert_builtin_ops_only(task_dir)  # attention, layer norm and GELU without Flex
    assert tflite_input(task_dir) == ((28, 28, 3), np.uint8)
    assert report["exports"]["float16"]["passed"] and report["exports"]["onnx"]["max_abs_diff"] <= 1e-4


def test_a_patch_size_the_image_cannot_take_is_one_line(tmp_path):
    from pipelines.errors import PipelineError
    with pytest.raises(PipelineError, match=r"--patch_size=5: a 28x28 image does not divide into 5x5 patches"):
        run_pipeline(tmp_path, "--task=transformer", "--patch_size=5", "--stages=train")
