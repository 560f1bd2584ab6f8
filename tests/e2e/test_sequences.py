"""Sequences to classify from a wide file, through every stage: the fully convolutional network against its
nearest-neighbour baseline, the exports' parity, dlpipe-predict on new rows with and without their label, and a
UCR-style header-less TSV with its own test file."""

import csv
import dataclasses
import json
import os
import urllib.request

import numpy as np
import pytest

from models import rocket
from pipelines import artifacts, prediction, runner
from pipelines.data import sequences, sources
from pipelines.families import Asked
from tests import series as made
from tests.conftest import assert_one_line_error, cli_in_process, config_from_flags
from tests.loopback import serving


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    path = made.wide_csv(root / "shapes.csv", 240)
    records = runner.run(config_from_flags("--task=conv", f"--dataset={path}", "--label_column=label",
                                           "--onnx",  # the default epochs: 100 steps on a small set
                                           "--tflite_variants=float32,int8", f"--output_dir={root}"))
    return root, path, records


def test_the_fcn_learns_shapes_beats_chance_and_reports_the_nearest_neighbour_and_minirocket_beside_it(shapes_run):
    root, path, records = shapes_run
    metrics = json.load(open(root / "conv" / artifacts.METRICS))
    assert metrics["family"] == "classifier" and metrics["test_accuracy"] >= 0.85  # chance is 1/3
    # 1-NN on the same split, computed here: the data layer's train and test series, the train split's first 173
    # (240 − 48 test − 19 validation carved from its end), each series scaled by itself as the model scales it.
    split = sequences.prepare(path, label_column="label", test_dataset=None, test_split=0.2)
    assert metrics["baseline_rows"] == 173 and metrics["baseline_1nn_accuracy"] == pytest.approx(
        made.nearest_neighbour_accuracy((split.train[0][:173], split.train[1][:173]), split.test))
    # MiniRocket beside it, fitted here on every labelled series (train and validation, in the split's order).
    reference = rocket.build_rocket_classifier((60, 1), 3, series_scale={**split.scale(), "each": False})
    rocket.fit(reference, [split.train])
    assert metrics["baseline_minirocket_accuracy"] == pytest.approx(
        np.mean(reference.predict(split.test[0], verbose=0).argmax(-1) == split.test[1]))
    assert metrics["baseline_minirocket_rows"] == 192
    assert (f"Baselines fitted on the same series, test accuracy: 1-nearest-neighbour (Euclidean) "
            f"{metrics['baseline_1nn_accuracy']:.4f}, MiniRocket {metrics['baseline_minirocket_accuracy']:.4f}."
            in open(root / "conv" / artifacts.REPORT).read())
    exports = json.load(open(root / "conv" / artifacts.VERIFY))
    assert exports["passed"] and {"float32", "int8", "onnx", "savedmodel"} <= set(exports["exports"])
    assert exports["exports"]["onnx"]["max_abs_diff"] <= 1e-4
    trained_on = json.load(open(root / "conv" / artifacts.CONFIG))["trained_on"]
    assert trained_on["modality"] == "series" and trained_on["steps"] == 60
    # The data settings report.md lists are those that change how a wide file of series is read, as they were set
    # (an unset --test_dataset is not listed); none of an image set's or a forecast's.
    lines = open(root / "conv" / artifacts.REPORT).read().splitlines()
    assert {"| label_column | label |", "| test_split | 0.2 |", "| series_scaling | each |"} <= set(lines)
    assert {name for name in sources.DATA_SETTINGS if any(line.startswith(f"| {name} |") for line in lines)} == {
        "label_column", "test_split", "series_scaling"}


def test_new_rows_are_classified_with_or_without_their_label_as_keras_does(shapes_run, tmp_path):
    root, _, _ = shapes_run
    values, labels = made.shapes(30, seed=11)
    unlabelled = tmp_path / "new.csv"
    with open(unlabelled, "w") as f:
        f.write(",".join(f"t{i}" for i in range(60)) + "\n")
        f.writelines(",".join(f"{v:.4f}" for v in row) + "\n" for row in values)
    answers = {}
    for model in ("saved_model", "model_int8.tflite"):
        output = tmp_path / f"{model}.csv"
        summary = prediction.predict_file(prediction.open_run(str(root / "conv"), model), str(unlabelled),
                                          str(output), Asked("label"))
        rows = list(csv.DictReader(open(output)))
        assert summary.examples == 30 and [r["row"] for r in rows] == [str(i) for i in range(1, 31)]
        answers[model] = [r["label"] for r in rows]
    assert np.mean(np.array(answers["saved_model"]) == np.array(labels)) >= 0.8
    assert np.mean(np.array(answers["saved_model"]) == np.array(answers["model_int8.tflite"])) >= 0.9
    labelled = made.wide_csv(tmp_path / "labelled.csv", 30, seed=11)
    summary = prediction.predict_file(prediction.open_run(str(root / "conv")), labelled, str(tmp_path / "s.csv"),
                                      Asked("label"))
    assert summary.scores["accuracy"] == pytest.approx(np.mean(np.array(answers["saved_model"]) == np.array(labels)))


def test_a_header_less_tsv_with_its_own_test_file_trains_on_each_series_scaled_by_itself(tmp_path):
    train = made.wide_csv(tmp_path / "Shapes_TRAIN.tsv", 120, header=False, sep="\t")
    test = made.wide_csv(tmp_path / "Shapes_TEST.tsv", 60, seed=7, header=False, sep="\t")
    flags = ("--task=conv", f"--dataset={train}", "--label_column=0", f"--test_dataset={test}", "--series_scaling=each",
             "--conv_filters=8,16", "--epochs=4", "--batch_size=16", "--stages=train,evaluate",
             f"--output_dir={tmp_path}")
    runner.run(config_from_flags(*flags))
    metrics = json.load(open(tmp_path / "conv" / artifacts.METRICS))
    assert metrics["num_test_examples"] == 60 and metrics["labels"] == sorted(made.SHAPES)
    split = sequences.prepare(train, label_column="0", test_dataset=test, test_split=0.2)  # the test file's series
    assert metrics["test_accuracy"] > 0.6 and metrics["baseline_rows"] == 108  # 120 − 12 validation
    assert metrics["baseline_1nn_accuracy"] == pytest.approx(
        made.nearest_neighbour_accuracy((split.train[0][:108], split.train[1][:108]), split.test))
    # Another test file is another data set: the same command with a changed test file evaluates again.
    made.wide_csv(tmp_path / "Shapes_TEST.tsv", 60, seed=8, header=False, sep="\t")
    assert [r.result for r in runner.run(config_from_flags(*flags))][0] != "reused"


def test_a_test_file_for_a_task_that_reads_tables_is_one_line(tmp_path):
    path = made.wide_csv(tmp_path / "s.csv", 30)
    assert_one_line_error(cli_in_process("--task=dense", f"--dataset={path}", "--label_column=label",
                                         f"--test_dataset={path}", f"--output_dir={tmp_path}"),
                          "--test_dataset does not apply to", "a CSV or TSV of sequences to classify",
                          "--task=conv")
    assert not os.path.exists(tmp_path / "dense" / artifacts.MODEL)


def test_a_long_file_of_recordings_trains_one_classifier_and_names_each_recording_in_predictions(tmp_path):
    path = made.long_csv(tmp_path / "motions.csv", 90)
    runner.run(config_from_flags("--task=conv", f"--dataset={path}", "--series_id_column=recording",
                                 "--time_column=t", "--label_column=activity", "--conv_filters=8,16",
                                 "--tflite_variants=float32", "--noonnx", "--batch_size=8", "--epochs=12",
                                 "--stages=train,evaluate,export", f"--output_dir={tmp_path}"))
    metrics = json.load(open(tmp_path / "conv" / artifacts.METRICS))
    assert metrics["family"] == "classifier" and metrics["labels"] == sorted(made.SHAPES)
    assert metrics["test_accuracy"] > 0.6 and metrics["num_test_examples"] == 18
    trained_on = json.load(open(tmp_path / "conv" / artifacts.CONFIG))["trained_on"]
    assert trained_on["columns"] == ["acc", "gyro"] and trained_on["steps"] == 60  # the longest recording
    new = made.long_csv(tmp_path / "new.csv", 9, seed=6)
    summary = prediction.predict_file(prediction.open_run(str(tmp_path / "conv"), "model.tflite"), new,
                                      str(tmp_path / "p.csv"), Asked("activity"))
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["recording"] for r in rows] == [f"rec{i:03d}" for i in range(9)] and summary.scores["examples"] == 9


def test_without_a_task_an_archive_file_gets_minirocket_which_ships_and_verifies(tmp_path):
    train = made.wide_csv(tmp_path / "Shapes_TRAIN.tsv", 120, header=False, sep="\t")
    test = made.wide_csv(tmp_path / "Shapes_TEST.tsv", 60, seed=7, header=False, sep="\t")
    records = runner.run(config_from_flags(f"--dataset={train}", "--label_column=0", f"--test_dataset={test}",
                                           f"--output_dir={tmp_path}"))
    assert [r.stage for r in records] == ["train", "evaluate", "export", "verify", "report"]
    metrics = json.load(open(tmp_path / "rocket" / artifacts.METRICS))
    assert metrics["test_accuracy"] >= 0.95 and metrics["test_accuracy"] >= metrics["baseline_1nn_accuracy"]
    assert "baseline_minirocket_accuracy" not in metrics  # the model is one
    exports = json.load(open(tmp_path / "rocket" / artifacts.VERIFY))
    assert exports["passed"] and {"savedmodel", "float32", "dynamic_range", "float16", "int8", "onnx"} <= set(
        exports["exports"])
    assert exports["exports"]["float32"]["top1_agreement"] == 1.0
    assert min(exports["exports"][bits]["top1_agreement"] for bits in ("dynamic_range", "int8")) >= 0.99
    assert not any(row.get("left_out") for row in exports["exports"].values())  # every file ships
    history = json.load(open(tmp_path / "rocket" / artifacts.HISTORY))
    assert history["examples"] == [120] and history["features"] == [9996]  # train and validation, no epochs
    assert not (tmp_path / "rocket" / artifacts.CURVES_PNG).exists()  # no curves to draw
    report = open(tmp_path / "rocket" / artifacts.REPORT).read()
    assert "Fitted in closed form, no epochs: alpha " in report and "epochs; last" not in report


def variable_lengths(path, count: int, seed: int, steps: int = 60) -> str:
    """A header-less archive file of shapes 36–60 steps long, NaN past each one's end (as the UCR archive pads)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(count):
            length = int(rng.integers(36, steps + 1))
            values, labels = made.shapes(i % 3 + 1, length, seed=seed * 1000 + i)  # the last is of class i % 3
            cells = [f"{v:.4f}" for v in values[-1]] + ["NaN"] * (steps - length)
            f.write("\t".join([labels[-1], *cells]) + "\n")
    return str(path)


def test_series_of_different_lengths_are_each_computed_on_their_own_steps_and_every_file_ships(tmp_path):
    """No --task: the rocket reads the missing values past each series' end and masks them (models/rocket.py);
    every file verifies and ships (ONNX Runtime and the int8 file, whose input keeps its lowest code for them, too),
    dlpipe-predict reads new NaN-padded rows as training read them (the SavedModel's answers are evaluate's, the
    int8 file's the same), and dlpipe-serve takes NaN past a series' end from such a run alone."""
    train, test = variable_lengths(tmp_path / "V_TRAIN.tsv", 90, 1), variable_lengths(tmp_path / "V_TEST.tsv", 45, 2)
    output = tmp_path / "run"
    runner.run(config_from_flags(f"--dataset={train}", "--label_column=0", f"--test_dataset={test}",
                                 "--num_features=840", f"--output_dir={output}"))
    trained_on = json.load(open(output / "rocket" / artifacts.CONFIG))["trained_on"]
    assert trained_on["padding"] == "missing" and trained_on["steps"] == 60
    metrics = json.load(open(output / "rocket" / artifacts.METRICS))
    assert metrics["test_accuracy"] >= 0.9
    exports = json.load(open(output / "rocket" / artifacts.VERIFY))
    assert exports["passed"] and {"float32", "dynamic_range", "float16", "int8", "onnx"} <= set(exports["exports"])
    assert not any(row.get("left_out") for row in exports["exports"].values())
    answers = {}
    for model in ("saved_model", "model_int8.tflite"):
        summary = prediction.predict_file(prediction.open_run(str(output / "rocket"), model), test,
                                          str(tmp_path / f"{model}.csv"), Asked("label"))
        answers[model] = [row["label"] for row in csv.DictReader(open(tmp_path / f"{model}.csv"))]
        if model == "saved_model":
            assert summary.scores["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert np.mean(np.array(answers["saved_model"]) == np.array(answers["model_int8.tflite"])) >= 0.97
    rows = [[[float(v)] for v in line.split("\t")[1:]] for line in open(test).read().splitlines()[:5]]
    assert any(np.isnan(row).any() for row in rows)
    with serving(output) as base:
        request = urllib.request.Request(f"{base}/v1/models/rocket:predict", json.dumps({"instances": rows}).encode(),
                                         {"Content-Type": "application/json"})
        served = json.load(urllib.request.urlopen(request, timeout=60))
    assert [c["label"] for c in served["classifications"]] == answers["saved_model"][:5]


def test_dense_reads_a_header_less_archive_file_as_sequences_not_as_a_table(tmp_path):
    """The first row is data, not column names: dense classifies each row as a sequence, as conv would."""
    train = made.wide_csv(tmp_path / "Shapes_TRAIN.tsv", 80, header=False, sep="\t")
    runner.run(config_from_flags("--task=dense", f"--dataset={train}", "--label_column=0", "--epochs=2",
                                 "--stages=train,evaluate", f"--output_dir={tmp_path}"))
    metrics = json.load(open(tmp_path / "dense" / artifacts.METRICS))
    trained_on = json.load(open(tmp_path / "dense" / artifacts.CONFIG))["trained_on"]
    assert trained_on["modality"] == "series" and metrics["num_test_examples"] == 16  # 80 rows, the first among them


def test_without_a_task_a_long_file_of_labelled_recordings_gets_minirocket(tmp_path):
    path = made.long_csv(tmp_path / "motions.csv", 60)
    config = config_from_flags(f"--dataset={path}", "--series_id_column=recording", "--time_column=t",
                               "--label_column=activity", f"--output_dir={tmp_path}")
    assert config.task == "rocket" and "int8" in config.tflite_variants  # a classifier's 8-bit file, not a forecaster's
    conv = config_from_flags(f"--dataset={path}", "--series_id_column=recording", "--time_column=t",
                             "--label_column=activity", "--task=conv")
    assert "int8" in conv.tflite_variants
    # Each task's scaling: the rocket's features compare values with biases from the train series (train), the
    # networks see each series z-normalised (each).
    assert config.series_scaling == "train" and conv.series_scaling == "each"
    runner.run(dataclasses.replace(config, stages=("train", "evaluate")))
    assert json.load(open(tmp_path / "rocket" / artifacts.METRICS))["test_accuracy"] > 0.8
    assert config_from_flags(f"--dataset={path}", "--series_id_column=recording", "--time_column=t",
                             "--label_column=acc").task == "dense"  # a value to forecast


def test_a_long_file_whose_classes_are_numbers_is_classified_when_the_problem_says_so(tmp_path):
    """The archive's long files number their classes (1, 2, …): a value to forecast, unless --problem says they
    are classes, as the docs tell (the flag was once refused as not applying to such a file)."""
    words = csv.reader(open(made.long_csv(tmp_path / "words.csv", 30)))
    header, rows = next(words), list(words)
    names = sorted({row[2] for row in rows})
    made.write(tmp_path / "motions.csv", header, [[*row[:2], names.index(row[2]) + 1, *row[3:]] for row in rows])
    flags = (f"--dataset={tmp_path / 'motions.csv'}", "--series_id_column=recording", "--time_column=t",
             "--label_column=activity")
    assert config_from_flags(*flags).task == "dense"
    config = config_from_flags(*flags, "--problem=classification", f"--output_dir={tmp_path}")
    assert config.task == "rocket"
    runner.run(dataclasses.replace(config, stages=("train",)))
    assert json.load(open(tmp_path / "rocket" / artifacts.CONFIG))["trained_on"]["label_names"] == ["1", "2", "3"]


def test_an_8_bit_file_its_client_cannot_run_is_left_out_with_the_clients_words_and_the_rest_ships(tmp_path):
    """A second channel 10⁴ times smaller than the first: int8 holds both channels' deviations in one scale, the
    small one's is its zero point, and LiteRT's int8 DIV refuses to divide by it (aeon's BasicMotions did this,
    each series z-normalised by itself: --series_scaling=each)."""
    path = made.long_csv(tmp_path / "motions.csv", 60, second_scale=1e-4)
    records = runner.run(config_from_flags(f"--dataset={path}", "--series_id_column=recording", "--time_column=t",
                                           "--label_column=activity", "--stages=train,export,verify", "--noonnx",
                                           "--series_scaling=each",
                                           "--num_features=840",  # a rocket flag, the task chosen by the data
                                           f"--output_dir={tmp_path}"))
    exports = json.load(open(tmp_path / "rocket" / artifacts.VERIFY))["exports"]
    assert exports["int8"]["left_out"].startswith("LiteRT could not run it (") and "DIV" in exports["int8"]["left_out"]
    assert not os.path.exists(tmp_path / "rocket" / "model_int8.tflite") and records[-1].stage == "verify"
    assert all(exports[name]["passed"] for name in ("float32", "dynamic_range", "float16"))


def test_the_rocket_has_nothing_to_tune_and_says_so(tmp_path):
    train = made.wide_csv(tmp_path / "s.tsv", 30, header=False, sep="\t")
    assert_one_line_error(cli_in_process(f"--dataset={train}", "--label_column=0", "--stages=tune",
                                         f"--output_dir={tmp_path}"),
                          "--task=rocket has nothing to tune by trials", "drop tune from --stages")
