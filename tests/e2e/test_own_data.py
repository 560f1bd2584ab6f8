"""Your own data through the same runner: a folder of class subfolders of PNG images (written from a slice of the
real Fashion-MNIST) and a folder of .txt files with a known signal."""

import json
import os
import re

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from pipelines import metadata, runner
from pipelines.data import idx
from pipelines.metadata.generated.metadata_schema_generated import AssociatedFileType
from tests.conftest import REAL_IDX_DIR, assert_one_line_error, cli_in_process, config_from_flags, write_reviews

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
    write_reviews(root)
    return root


def test_an_image_folder_trains_exports_and_verifies_with_its_folder_names(photos, tmp_path):
    args = ("--task=dense", f"--dataset={photos}", "--epochs=2", "--tflite_variants=float32,int8", "--noonnx",
            f"--output_dir={tmp_path}")
    runner.run(config_from_flags(*args))
    task_dir = tmp_path / "dense"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["num_test_examples"] == pytest.approx(300, abs=10)  # a fifth of each class
    assert metrics["test_accuracy"] > 0.6  # chance is 0.1
    assert (task_dir / "labels.txt").read_text().splitlines() == sorted(CLASSES)
    assert json.loads((task_dir / "export_report.json").read_text())["passed"]
    detail = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()[0]
    assert tuple(detail["shape"][1:]) == (28, 28, 3) and detail["dtype"] == np.uint8  # camera RGB, gray inside

    assert {r.result for r in runner.run(config_from_flags(*args))} == {"reused"}
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(photos / "Bag" / "new.png")
    try:  # a changed folder is another data set: nothing is reused
        assert all(r.result != "reused" for r in runner.run(config_from_flags(*args, "--stages=train")))
    finally:
        os.remove(photos / "Bag" / "new.png")


def test_a_text_folder_learns_a_vocabulary_and_ships_token_ids(reviews, tmp_path):
    """Also what any text model ships: a SavedModel that takes strings, a TFLite file that takes token ids with
    the vocabulary packed beside (builtin ops only), ONNX on the token ids."""
    import tensorflow as tf
    runner.run(config_from_flags("--task=recurrent", f"--dataset={reviews}", "--epochs=3", "--rnn_units=16",
                                 "--sequence_length=12", "--test_split=0.4", "--tflite_variants=float32", "--onnx",
                                 f"--output_dir={tmp_path}"))
    task_dir = tmp_path / "recurrent"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["num_test_examples"] == 120 and metrics["test_accuracy"] > 0.8  # the signal words decide
    vocabulary = (task_dir / "vocab.txt").read_text().split("\n")
    assert {"great", "dull"} <= set(vocabulary)
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) > 10
    assert (task_dir / "labels.txt").read_text().splitlines() == ["negative", "positive"]
    assert b"Flex" not in (task_dir / "model.tflite").read_bytes()  # Flex ops are custom ops named Flex…
    detail = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()[0]
    assert tuple(detail["shape_signature"][1:]) == (12,) and detail["dtype"] == np.int64
    serve = tf.saved_model.load(str(task_dir / "saved_model")).signatures["serving_default"]
    (logits,) = serve(text=tf.constant(["a fine film", "dull"])).values()
    assert logits.shape == (2, 2)
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and report["exports"]["savedmodel"]["max_abs_diff"] <= 1e-4
    assert report["exports"]["onnx"]["max_abs_diff"] <= 1e-4  # the token-id model in ONNX Runtime
    # The TFLite file carries the vocabulary an app tokenizes with, and the label names.
    info, packed = metadata.read_metadata((task_dir / "model.tflite").read_bytes())
    assert packed == {"vocab.txt": (task_dir / "vocab.txt").read_bytes(),
                      "labels.txt": (task_dir / "labels.txt").read_bytes()}
    (tokens,) = info.subgraphMetadata[0].inputTensorMetadata
    assert tokens.name == b"token_ids" and tokens.associatedFiles[0].type == AssociatedFileType.VOCABULARY
    assert info.minParserVersion == b"1.0.1"
    for error in metrics["misclassified"]:  # text errors are quoted, not drawn
        assert error["true"] != error["predicted"] and error["text"]
    assert not (task_dir / "misclassified.png").exists() and (task_dir / "confusion_matrix.png").exists()


def test_a_folder_of_the_wrong_kind_for_the_task_is_one_line(reviews, tmp_path):
    result = cli_in_process("--task=conv", f"--dataset={reviews}", f"--output_dir={tmp_path}", "--stages=train")
    assert_one_line_error(result, f"{reviews} holds text examples, and --task=conv learns from image")


def test_a_dataset_that_is_neither_a_name_nor_a_folder_is_one_line(tmp_path):
    from tests.conftest import parse_cli
    assert_one_line_error(parse_cli(f"--dataset={tmp_path}/nope"), "--dataset must be one of",
                          "hf:<folder or name>, a folder or a .csv, .tsv, .parquet, .feather or .arrow file")


def write_houses(path, rows=600, seed=0):
    """Prices with a known signal: area, rooms, the town (a word), age; a few cells missing."""
    rng = np.random.default_rng(seed)
    lines = ["area m2,rooms,town,age (years),price"]
    for _ in range(rows):
        area, rooms, town, age = rng.uniform(30, 200), int(rng.integers(1, 7)), rng.choice(["north", "south"]), \
            rng.uniform(0, 80)
        price = 3000 * area + 10000 * rooms + (50000 if town == "north" else 0) - 500 * age + rng.normal(0, 10000)
        lines.append(f"{area:.1f},{rooms},{town if rng.random() > 0.05 else ''},{age:.0f},{price:.0f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def app_vector(features: dict, row: dict) -> np.ndarray:
    """What an app does with features.json to build the TFLite input from one raw row."""
    vector = []
    for column in features["columns"]:
        value = row[column["input"]]
        if column["kind"] == "numeric":
            vector.append(0.0 if value is None else (value - column["mean"]) / column["std"])
        elif column["kind"] == "text":  # its words: runs of letters, lower-cased
            words = set(re.findall(r"[^\W\d_]+", value.lower()))
            vector.extend(float(word in words) for word in column["words"])
        else:
            block = [0.0] * (1 + len(column["categories"]))
            block[1 + column["categories"].index(value) if value in column["categories"] else 0] = 1.0
            vector.extend(block)
    return np.array([vector], np.float32)


def test_a_csv_regression_reports_its_linear_baseline_and_an_app_can_call_it(tmp_path):
    import tensorflow as tf
    houses = write_houses(tmp_path / "houses.csv")
    runner.run(config_from_flags("--task=dense", f"--dataset={houses}", "--label_column=price", "--epochs=30",
                                 "--tflite_variants=float32,int8", "--noonnx", f"--output_dir={tmp_path}"))
    task_dir = tmp_path / "dense"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["table"]["problem"] == "regression" and metrics["num_test_examples"] == 120
    assert metrics["test_r2"] > 0.9 and metrics["baseline_linear_r2"] > 0.9  # the signal is nearly linear
    assert metrics["table"]["missing_cells"] == {"town": pytest.approx(30, abs=15)}
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and report["exports"]["int8"]["limit"] == ["mean_diff_over_rmse", 0.1]
    assert not (task_dir / "labels.txt").exists()  # a regressor has no classes
    assert (task_dir / "predictions.png").exists() and not (task_dir / "confusion_matrix.png").exists()
    assert "**test_rmse = " in (task_dir / "report.md").read_text()

    row = {"area_m2": 120.0, "rooms": 3.0, "town": "north", "age_years": 10.0}
    serve = tf.saved_model.load(str(task_dir / "saved_model")).signatures["serving_default"]
    (value,) = serve(**{k: tf.constant([v]) for k, v in row.items()}).values()  # raw columns, by name
    features = json.loads((task_dir / "features.json").read_text())
    runner_ = Interpreter(model_path=str(task_dir / "model.tflite")).get_signature_runner()
    (standardised,) = runner_(features=app_vector(features, row)).values()
    output = features["output"]
    assert float(standardised[0, 0]) * output["std"] + output["mean"] == pytest.approx(float(value[0, 0]), rel=1e-4)
    assert 300_000 < float(value[0, 0]) < 500_000  # 3000·120 + 30000 + 50000 − 5000 = 435,000


def test_a_csv_classification_reports_its_baselines_and_an_app_can_call_it(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["Name,Pclass,Sex,Age,Survived"]
    for i in range(600):
        pclass, sex, age = int(rng.integers(1, 4)), rng.choice(["male", "female"]), rng.uniform(1, 70)
        title = ("Mrs" if age > 25 else "Miss") if sex == "female" else ("Master" if age < 12 else "Mr")
        survived = int(1.5 * (sex == "female" or title == "Master") - 0.8 * (pclass - 2) + rng.normal(0, 0.5) > 0)
        lines.append(f"Surname{i} {title}. Given{i},{pclass},{sex},{age:.0f},{survived if i % 50 else ''}")
    (tmp_path / "titanic.csv").write_text("\n".join(lines) + "\n")
    runner.run(config_from_flags("--task=dense", f"--dataset={tmp_path / 'titanic.csv'}", "--label_column=Survived",
                                 "--epochs=15", "--tflite_variants=float32,int8", "--noonnx",
                                 f"--output_dir={tmp_path}"))
    task_dir = tmp_path / "dense"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["table"]["dropped_rows_without_label"] == 12
    assert metrics["test_accuracy"] > metrics["baseline_majority_accuracy"]
    assert 0.5 < metrics["baseline_logistic_accuracy"] <= 1
    assert 0.5 < metrics["baseline_gradient_boosting_accuracy"] <= 1
    assert "| gradient boosting (scikit-learn's HistGradientBoosting, its defaults) |" in (
        task_dir / "report.md").read_text()
    assert (task_dir / "labels.txt").read_text().splitlines() == ["0", "1"]
    features = json.loads((task_dir / "features.json").read_text())
    runner_ = Interpreter(model_path=str(task_dir / "model.tflite")).get_signature_runner()
    assert metrics["table"]["text_columns"] == ["Name"]  # every name different: its words are features
    assert {"master", "miss", "mr", "mrs"} <= set(features["columns"][0]["words"])
    woman, man = ({"Name": f"Hope, {title}. Ann", "Pclass": 1.0, "Sex": sex, "Age": 30.0}
                  for sex, title in (("female", "Mrs"), ("male", "Mr")))
    (logits,) = runner_(features=np.vstack([app_vector(features, woman), app_vector(features, man)])).values()
    assert logits[0].argmax() == 1 and logits[1, 1] < logits[0, 1]  # the signal: women in first class survive
    import tensorflow as tf
    serve = tf.saved_model.load(str(task_dir / "saved_model")).signatures["serving_default"]
    (served,) = serve(**{k: tf.constant([v, man[k]]) for k, v in woman.items()}).values()  # raw columns, by name
    np.testing.assert_allclose(tf.nn.softmax(served).numpy(), logits, atol=1e-5)  # the file's are probabilities


def _write_rare_class_table(path, rows: int = 900) -> None:
    """Two numbers; the rare class (about 8%) where their noisy sum is large: a model for accuracy calls few of it."""
    rng = np.random.default_rng(5)
    lines = ["a,b,outcome"]
    for _ in range(rows):
        a, b = rng.normal(size=2)
        lines.append(f"{a:.4f},{b:.4f},{'rare' if a + b + rng.normal(0, 0.8) > 2.2 else 'common'}")
    path.write_text("\n".join(lines) + "\n")


def test_balanced_class_weights_find_more_of_a_rare_class_and_the_run_reports_its_balanced_accuracy(tmp_path):
    _write_rare_class_table(tmp_path / "rare.csv")
    found = {}
    for weighting in ("none", "balanced"):
        runner.run(config_from_flags("--task=dense", f"--dataset={tmp_path / 'rare.csv'}", "--label_column=outcome",
                                     f"--class_weight={weighting}", "--epochs=10", "--stages=train,evaluate",
                                     f"--output_dir={tmp_path / weighting}"))
        task_dir = tmp_path / weighting / "dense"
        found[weighting] = json.loads((task_dir / "metrics.json").read_text())
        assert json.loads((task_dir / "config.json").read_text())["class_weight"] == weighting
    recall = {weighting: metrics["per_class"]["rare"]["recall"] for weighting, metrics in found.items()}
    assert recall["balanced"] >= recall["none"] + 0.15, recall
    assert found["balanced"]["test_balanced_accuracy"] > found["none"]["test_balanced_accuracy"]
    assert found["balanced"]["members"] == ["network", "linear", "trees"]  # weighed alike: none left out


def test_class_weights_on_a_model_that_is_no_classifier_or_not_fitted_by_keras_is_one_line(tmp_path):
    houses = write_houses(tmp_path / "houses.csv", rows=60)
    result = cli_in_process(f"--dataset={houses}", "--label_column=price", "--class_weight=balanced",
                            f"--output_dir={tmp_path}", "--stages=train")
    assert_one_line_error(result, "--class_weight=balanced weighs the classes of a classifier", "leave the flag out")
    _write_rare_class_table(tmp_path / "rare.csv", rows=200)
    result = cli_in_process("--task=dense", f"--dataset={tmp_path / 'rare.csv'}", "--label_column=outcome",
                            "--trainer=numpy", "--class_weight=balanced", f"--output_dir={tmp_path}", "--stages=train")
    assert_one_line_error(result, "--trainer=numpy does not train with Keras' fit, which --class_weight sets")


def test_a_csv_without_its_label_column_is_one_line_listing_the_columns(tmp_path):
    houses = write_houses(tmp_path / "houses.csv", rows=20)
    result = cli_in_process(f"--dataset={houses}", f"--output_dir={tmp_path}", "--stages=train")
    assert_one_line_error(result, "--label_column is required", "area m2, rooms, town, age (years), price")


def test_the_transformer_learns_a_text_folder(reviews, tmp_path):
    runner.run(config_from_flags("--task=transformer", f"--dataset={reviews}", "--epochs=6", "--model_width=16",
                                 "--encoder_layers=1", "--attention_heads=2", "--sequence_length=12",
                                 "--test_split=0.4", "--tflite_variants=float32", "--noonnx", "--learning_rate=3e-3",
                                 f"--output_dir={tmp_path}"))
    task_dir = tmp_path / "transformer"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8  # the signal words decide
    # Text through the vocabulary path: token ids in, builtin ops only, the string SavedModel agrees.
    assert b"Flex" not in (task_dir / "model.tflite").read_bytes()  # Flex ops are custom ops named Flex…
    detail = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()[0]
    assert tuple(detail["shape_signature"][1:]) == (12,) and detail["dtype"] == np.int64
    assert (task_dir / "vocab.txt").read_text().split("\n")[:2] == ["", "[UNK]"]
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and report["exports"]["savedmodel"]["max_abs_diff"] <= 1e-4


def test_a_conv_run_fine_tuned_on_another_data_set_keeps_its_body_and_rebuilds_its_head(tmp_path, capsys):
    import keras
    first = tmp_path / "first"
    runner.run(config_from_flags("--task=conv", "--conv_filters=8,16", "--dense_units=16", "--epochs=1",
                                 "--max_train_examples=1000", "--stages=train", f"--output_dir={first}"))
    source = keras.models.load_model(first / "conv" / "model.keras", compile=False)
    three = tmp_path / "three"  # another data set: three classes of Fashion-MNIST's test images
    test = idx.load_idx_split(REAL_IDX_DIR, "test")
    for i in np.flatnonzero(test["label"] < 3)[:600]:
        folder = three / CLASSES[test["label"][i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test["image"][i, ..., 0]).save(folder / f"{i:05d}.png")
    config = config_from_flags("--task=conv", "--conv_filters=8,16", "--dense_units=16", "--epochs=1",
                               f"--dataset={three}", f"--init_from={first / 'conv' / 'model.keras'}",
                               "--learning_rate=1e-7", "--lr_schedule=constant", "--stages=train",
                               f"--output_dir={tmp_path / 'tuned'}")
    runner.run(config)
    out = capsys.readouterr().out
    assert "initialised 5 of 6 layers from" in out and "starting fresh: logits" in out
    tuned = keras.models.load_model(tmp_path / "tuned" / "conv" / "model.keras", compile=False)
    assert tuned.output_shape == (None, 3)
    for name in ("block0_conv", "block1_conv", "dense"):  # a learning rate of 1e-7 leaves the loaded body as it was
        for got, expected in zip(tuned.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_allclose(got, expected, atol=1e-4)
