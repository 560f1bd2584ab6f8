"""Your own data through the same runner: a folder of class subfolders of PNG images (written from a slice of the
real Fashion-MNIST) and a folder of .txt files with a known signal."""

import json
import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from pipelines import runner
from pipelines.data import idx
from tests.conftest import REAL_IDX_DIR, assert_one_line_error, config_from_flags, run_cli

CLASSES = ("T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    train = idx.load_idx_split(REAL_IDX_DIR, "train")
    for i in range(1500):
        folder = root / CLASSES[train["label"][i]]
        folder.mkdir(exist_ok=True)
        Image.fromarray(train["image"][i, ..., 0]).save(folder / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews")
    rng = np.random.default_rng(0)
    words = {"negative": ["dull", "slow", "boring", "weak"], "positive": ["great", "fun", "moving", "sharp"]}
    filler = ["the", "film", "was", "a", "plot", "and", "cast"]
    for label, signal in words.items():
        (root / label).mkdir()
        for i in range(150):
            text = " ".join(rng.choice(filler + signal, size=10))
            (root / label / f"{i:03d}.txt").write_text(f"{text} {rng.choice(signal)}.")
    return root


def test_an_image_folder_trains_exports_and_verifies_with_its_folder_names(photos, tmp_path):
    args = ("--task=dense", f"--dataset={photos}", "--epochs=2", "--tflite_variants=float32,int8",
            f"--output_dir={tmp_path}")
    runner.run(config_from_flags(*args))
    task_dir = tmp_path / "dense"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["num_test_examples"] == pytest.approx(300, abs=10)  # a fifth of each class
    assert metrics["test_accuracy"] > 0.6  # chance is 0.1
    assert (task_dir / "labels.txt").read_text().splitlines() == sorted(CLASSES)
    assert json.loads((task_dir / "export_report.json").read_text())["passed"]
    detail = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()[0]
    assert tuple(detail["shape"][1:]) == (28, 28, 1) and detail["dtype"] == np.uint8

    assert {r.result for r in runner.run(config_from_flags(*args))} == {"reused"}
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(photos / "Bag" / "new.png")
    try:  # a changed folder is another data set: nothing is reused
        assert all(r.result != "reused" for r in runner.run(config_from_flags(*args, "--stages=train")))
    finally:
        os.remove(photos / "Bag" / "new.png")


def test_a_text_folder_learns_a_vocabulary_and_ships_token_ids(reviews, tmp_path):
    runner.run(config_from_flags("--task=recurrent", f"--dataset={reviews}", "--epochs=3", "--rnn_units=16",
                                 "--sequence_length=12", "--test_split=0.4", "--tflite_variants=float32",
                                 f"--output_dir={tmp_path}"))
    task_dir = tmp_path / "recurrent"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["num_test_examples"] == 120 and metrics["test_accuracy"] > 0.8  # the signal words decide
    vocabulary = (task_dir / "vocab.txt").read_text().split("\n")
    assert {"great", "dull"} <= set(vocabulary)
    assert (task_dir / "labels.txt").read_text().splitlines() == ["negative", "positive"]
    detail = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()[0]
    assert tuple(detail["shape"][1:]) == (12,)


def test_a_folder_of_the_wrong_kind_for_the_task_is_one_line(reviews, tmp_path):
    result = run_cli("--task=conv", f"--dataset={reviews}", f"--output_dir={tmp_path}", "--stages=train")
    assert_one_line_error(result, f"{reviews} holds text examples, and --task=conv learns from image")


def test_a_dataset_that_is_neither_a_name_nor_a_folder_is_one_line(tmp_path):
    from tests.conftest import parse_cli
    assert_one_line_error(parse_cli(f"--dataset={tmp_path}/nope"), "--dataset must be one of", "or a folder")
