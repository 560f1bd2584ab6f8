"""A GAN on a folder of one's own pictures: no classes needed, colour, its depth from the image size, measured
without labels, its pictures drawn, its generator shipped; and the folder's mistakes, one line each."""

import json
import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from pipelines import prediction, runner
from pipelines.errors import PipelineError
from tests.conftest import assert_one_line_error, cli_in_process, config_from_flags
from tests.pictures import write_pictures

SMALL = ("--task=gan", "--passes_per_epoch=1", "--batch_size=64", "--noise_dim=16", "--generator_widths=32,16",
         "--discriminator_widths=16,32", "--noonnx")


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """200 colour 32×32 pictures in nested folders, no classes: trained 2 epochs, exported, verified."""
    root = tmp_path_factory.mktemp("faces")
    write_pictures(root / "faces", 200, 32, nested=True)
    output = root / "runs"
    runner.run(config_from_flags(*SMALL, f"--dataset={root / 'faces'}", f"--output_dir={output}", "--epochs=2",
                                 "--tflite_variants=float32", "--onnx"))
    return root, output / "gan"


def test_an_unlabeled_colour_folder_trains_through_verify_with_a_uint8_rgb_generator(colour_run):
    _, task_dir = colour_run
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and {"float32", "onnx"} <= set(report["exports"])
    runner_ = Interpreter(model_path=str(task_dir / "model.tflite")).get_signature_runner()
    (pixels,) = runner_(noise=np.zeros((2, 16), np.float32)).values()
    assert pixels.dtype == np.uint8 and pixels.shape == (2, 32, 32, 3)
    grid = Image.open(task_dir / "samples" / "epoch_002.png")
    assert grid.mode == "RGB" and grid.size == (320, 320)


def test_without_labels_the_measure_is_the_label_free_one_with_its_floor_ceiling_and_memorization(colour_run):
    _, task_dir = colour_run
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["feature_network"]["name"] == "random_conv" and "class_histogram" not in metrics
    assert metrics["frechet_distance_train_vs_test"] < metrics["frechet_distance_untrained_generator"]
    assert metrics["kid_train_vs_test"] < metrics["kid_untrained_generator"]
    assert not metrics["memorization"]["memorizing"] and metrics["memorization"]["generated_checked"] == 500
    report = (task_dir / "report.md").read_text()
    assert "| untrained generator (ceiling) |" in report and "Memorization:" in report
    assert "training.gif" in report and "interpolation.png" in report
    gif = Image.open(task_dir / "training.gif")
    assert gif.n_frames >= 2 and gif.size == (320, 320)
    assert Image.open(task_dir / "interpolation.png").size == (10 * 32, 6 * 32)


def test_dlpipe_predict_draws_colour_png_samples(colour_run, tmp_path):
    _, task_dir = colour_run
    summary = prediction.write_samples(prediction.open_run(str(task_dir), "model.tflite"), str(tmp_path), 5, seed=1)
    assert summary.examples == 5
    assert np.asarray(Image.open(tmp_path / "sample_00000.png")).shape == (32, 32, 3)


def test_samples_replace_an_earlier_set_whole_and_never_other_files(colour_run, tmp_path):
    _, task_dir = colour_run
    predictor = prediction.open_run(str(task_dir), "model.tflite")
    prediction.write_samples(predictor, str(tmp_path / "samples"), 12, seed=1)
    prediction.write_samples(predictor, str(tmp_path / "samples"), 3, seed=2)
    assert sorted(os.listdir(tmp_path / "samples")) == ["grid.png", "sample_00000.png", "sample_00001.png",
                                                        "sample_00002.png", "samples.csv"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"a photo")
    (tmp_path / "file").write_text("notes")
    for folder, message in ((tmp_path / "mine", "holds files that are not dlpipe samples: give a new or empty folder"),
                            (tmp_path / "file", "is a file: give a folder for the samples")):
        with pytest.raises(PipelineError, match=message):
            prediction.write_samples(predictor, str(folder), 3, seed=2)
    assert (tmp_path / "mine" / "holiday.jpg").read_bytes() == b"a photo" and (tmp_path / "file").read_text() == "notes"
    with pytest.raises(PipelineError, match="trained without --conditional, so it draws no chosen class: drop "
                                            "--class_name"):
        prediction.write_samples(predictor, str(tmp_path / "x"), 3, seed=2, class_name="circle")


def test_a_grayscale_folder_at_64_pixels_takes_a_deeper_generator(tmp_path):
    write_pictures(tmp_path / "gray", 40, 64, gray=True)
    runner.run(config_from_flags(*SMALL, f"--dataset={tmp_path / 'gray'}", f"--output_dir={tmp_path}", "--epochs=1",
                                 "--tflite_variants=float32", "--stages=train,export"))
    model = Interpreter(model_path=str(tmp_path / "gan" / "model.tflite"))
    assert model.get_output_details()[0]["shape"].tolist() == [1, 64, 64, 1]
    history = json.loads((tmp_path / "gan" / "history.json").read_text())
    assert len(history["g_loss"]) == 1


def test_conditional_on_class_folders_learns_the_classes_and_draws_the_one_asked_for(tmp_path):
    write_pictures(tmp_path / "shapes", 90, 32, classes=True)
    runner.run(config_from_flags(*SMALL, "--conditional", f"--dataset={tmp_path / 'shapes'}",
                                 f"--output_dir={tmp_path}", "--epochs=1", "--tflite_variants=float32",
                                 "--max_test_examples=18", "--stages=train,evaluate,export"))
    metrics = json.loads((tmp_path / "gan" / "metrics.json").read_text())
    assert metrics["feature_network"]["name"] == "feature_classifier"  # labels: the classifier's stick …
    assert set(metrics["class_histogram"]) == {"disc", "square", "triangle"}
    assert "kid" in metrics["label_free"]  # … and the label-free measure beside it
    # Labels cycle through the 3 classes: right answers for class c are at most its share of the labels and of
    # the classifier's answers.
    label_shares = np.bincount(np.arange(metrics["frechet_examples"]) % 3) / metrics["frechet_examples"]
    ceiling = sum(min(share, label) for share, label in zip(metrics["class_histogram"].values(), label_shares))
    assert metrics["conditional_label_accuracy"] <= ceiling + 1e-9
    signature = Interpreter(model_path=str(tmp_path / "gan" / "model.tflite")).get_signature_list()
    assert sorted(signature["serving_default"]["inputs"]) == ["label", "noise"]


@pytest.mark.parametrize("make,flags,fragments", [
    (lambda root: (root / "empty" / "sub").mkdir(parents=True), ("--task=gan",), ("holds no images at any depth",)),
    (lambda root: write_pictures(root / "empty", 10, 32), ("--task=gan", "--image_size=64,64"),
     ("smaller than --image_size=64,64", "upscaling")),
    (lambda root: write_pictures(root / "empty", 10, 48), ("--task=gan", "--image_size=36,36"),
     ("--image_size", "square images whose side halves down to 4–7 pixels")),
    (lambda root: write_pictures(root / "empty", 10, 32), ("--task=gan", "--image_size=64,32"),
     ("--image_size", "square images", "64x32 is not one")),  # named before the pictures are measured
    (lambda root: write_pictures(root / "empty", 10, 32), ("--task=conv",), ("has no class subfolders",)),
])
def test_a_folders_mistakes_are_one_line_each(tmp_path, make, flags, fragments):
    make(tmp_path)
    result = cli_in_process(*flags, f"--dataset={tmp_path / 'empty'}", f"--output_dir={tmp_path / 'out'}",
                            "--epochs=1")
    assert_one_line_error(result, *fragments)
