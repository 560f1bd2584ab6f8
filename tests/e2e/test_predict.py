"""Predict on new data: a trained run and new files → predictions, as dlpipe-predict and the predict stage give them.

A Titanic-shaped table (tests/titanic.py) is trained once; new rows are predicted through every model the run
ships, scored when they hold their labels, and written as a Kaggle submission; an image folder and a GAN's samples
too; bad input is one line each; memory stays flat over 100,000 rows.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pipelines import artifacts, prediction, runner
from pipelines.data import sources, tables
from pipelines.errors import PipelineError
from pipelines.families import Asked
from tests import titanic
from tests.conftest import ROOT, assert_one_line_error, config_from_flags


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def titanic_run(tmp_path_factory):
    """A dense run on 891 passengers: trained, evaluated, exported (float32, int8, ONNX), reported."""
    root = tmp_path_factory.mktemp("titanic")
    train = titanic.write(root / "train.csv", titanic.passengers(891))
    runner.run(config_from_flags(f"--dataset={train}", "--label_column=Survived", f"--output_dir={root / 'runs'}",
                                 "--epochs=8", "--tflite_variants=float32,int8",
                                 "--stages=train,evaluate,export,report"))
    return root, str(root / "runs" / "dense")


def unlabeled_csv(root, count=120) -> str:
    """New passengers without Survived, columns shuffled, one column the model never saw."""
    columns = [c for c in titanic.COLUMNS if c != "Survived"]
    columns = [columns[i] for i in np.random.default_rng(5).permutation(len(columns))] + ["Boarded"]
    rows = [dict(row, Boarded="yes") for row in titanic.passengers(count, seed=9, first_id=892)]
    return titanic.write(root / "new.csv", rows, columns)


def test_ids_and_codes_are_left_out_of_the_features_text_is_read_as_words_and_the_report_says_so(titanic_run):
    _, folder = titanic_run
    trained_on = artifacts.read_json(os.path.join(folder, artifacts.CONFIG))["trained_on"]
    assert [column for column, _ in trained_on["columns"]] == ["Pclass", "Name", "Sex", "Age", "SibSp", "Parch",
                                                               "Fare", "Cabin", "Embarked"]
    assert trained_on["id_columns"] == ["PassengerId"]
    report = open(os.path.join(folder, artifacts.REPORT)).read()
    assert "| PassengerId | left out: an ID (a different whole number in every row)" in report
    assert "| Ticket | left out: an ID or codes (891 different values in 891 rows, and no word" in report
    assert "| Name | text: its frequent words |" in report and "| Cabin | text: its frequent words |" in report
    assert "| Sex | category with 2 values |" in report and "| Fare | numeric |" in report


def test_every_shipped_model_gives_keras_labels_on_an_unlabeled_shuffled_csv(titanic_run):
    root, folder = titanic_run
    new = unlabeled_csv(root)
    answers = {}
    for model in (artifacts.MODEL, "saved_model", "model.tflite", "model_int8.tflite", "model.onnx"):
        output = root / f"by_{model}.csv"
        summary = prediction.predict_file(prediction.open_run(folder, model), new, str(output), Asked("Survived"))
        rows = read_csv(output)
        assert summary.examples == 120 and summary.scores is None and list(rows[0]) == [
            "PassengerId", "Survived", "probability"]
        assert [r["PassengerId"] for r in rows] == [str(892 + i) for i in range(120)]
        answers[model] = np.array([r["Survived"] for r in rows])
    keras_labels = answers.pop(artifacts.MODEL)
    for model, labels in answers.items():
        agreement = float(np.mean(labels == keras_labels))
        assert agreement >= (0.97 if "int8" in model else 1.0), model  # int8: its verify limit, 99% ± chance


def test_a_parquet_file_of_new_rows_gives_the_csvs_predictions(titanic_run):
    """The same new rows as a Parquet file with typed columns (numbers as numbers, a missing age as null)."""
    import pyarrow.csv
    import pyarrow.parquet
    root, folder = titanic_run
    new = unlabeled_csv(root)
    parquet = root / "new.parquet"
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(new), parquet)
    predictor = prediction.open_run(folder)
    for path, output in ((new, root / "from_csv.csv"), (str(parquet), root / "from_parquet.csv")):
        assert prediction.predict_file(predictor, path, str(output), Asked("Survived")).examples == 120
    assert read_csv(root / "from_parquet.csv") == read_csv(root / "from_csv.csv")


def test_a_labelled_csv_scores_what_evaluate_measured_on_the_same_rows(titanic_run):
    """The test split's rows, written back as a CSV with their labels: the accuracy dlpipe-predict prints is
    metrics.json's test_accuracy, the same rows through the same model."""
    root, folder = titanic_run
    trained_on = artifacts.read_json(os.path.join(folder, artifacts.CONFIG))["trained_on"]
    data = sources.load_table(str(root / "train.csv"), naming=tables.Naming("Survived"), problem="auto",
                              test_split=0.2, cache_dir=str(root / "runs" / "cache"))
    by_input = {name: column for column, name in trained_on["columns"]}
    rows = []
    for example in data.test.read().as_numpy_iterator():
        row = {by_input[name]: ("" if np.isnan(v) else repr(float(v))) if isinstance(v, np.floating)
               else v.decode() for name, v in example["table"].items()}
        rows.append({**row, "Survived": data.label_names[example["label"]]})
    path = titanic.write(root / "labelled.csv", rows, list(rows[0]))
    summary = prediction.predict_file(prediction.open_run(folder), path, str(root / "scored.csv"), Asked("Survived"))
    metrics = artifacts.read_json(os.path.join(folder, artifacts.METRICS))
    assert summary.scores["examples"] == metrics["num_test_examples"] == len(rows)
    assert summary.scores["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert summary.scores["log_loss"] == pytest.approx(metrics["test_log_loss"], rel=1e-4)  # evaluate's, again
    assert metrics["baseline_majority_log_loss"] > metrics["test_log_loss"]
    assert json.load(open(root / "scored.scores.json"))["accuracy"] == summary.scores["accuracy"]
    assert summary.score_line.startswith(f"accuracy {metrics['test_accuracy']:.4f} on {len(rows)} labelled")


def test_a_submission_is_exactly_the_id_and_the_label(titanic_run):
    root, folder = titanic_run
    predictor = prediction.open_run(folder)
    prediction.predict_file(predictor, unlabeled_csv(root), str(root / "submission.csv"), Asked("Survived"),
                            submission=True)
    with open(root / "submission.csv") as f:
        lines = f.read().splitlines()
    assert lines[0] == "PassengerId,Survived" and len(lines) == 121
    assert all(len(line.split(",")) == 2 and line.split(",")[1] in ("0", "1") for line in lines[1:])


@pytest.mark.parametrize("write,message", [
    (lambda p: p.write_text("PassengerId,Pclass\n1,3\n"),
     "has no columns 'Name', 'Sex', 'Age', 'SibSp', 'Parch', 'Fare', 'Cabin', 'Embarked', which the model reads: "
     "its columns are"),
    (lambda p: p.write_text(""), "is empty: give a CSV with a header row"),
    (lambda p: titanic.write(p, [dict(r, Age="old" if i == 3 else r["Age"]) for i, r in enumerate(
        titanic.passengers(8))]), "column 'Age', data row 4: 'old' is not a number, and the model learned the column "
                                  "as numbers"),
    (lambda p: p.write_text(",".join(titanic.COLUMNS) + "\n"), "has a header and no data rows"),
])
def test_bad_new_rows_are_one_line_naming_the_column_and_row_and_leave_no_file(titanic_run, write, message):
    root, folder = titanic_run
    path, output = root / "bad.csv", root / "bad_predictions.csv"
    write(path)
    with pytest.raises(PipelineError, match=message):
        prediction.predict_file(prediction.open_run(folder), str(path), str(output), Asked("Survived"))
    assert not output.exists()


def test_a_damaged_export_is_refused_naming_the_stage_to_run_again(titanic_run, tmp_path):
    import shutil
    _, folder = titanic_run
    copy = shutil.copytree(folder, tmp_path / "dense")
    with open(copy / "model_int8.tflite", "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 16)
    with pytest.raises(PipelineError, match="model_int8.tflite in .* is not the one stage export wrote .*: run "
                                            "--stages=export again"):
        prediction.open_run(str(copy), "model_int8.tflite")
    with pytest.raises(PipelineError, match="has no model_float16.tflite that a finished export stage wrote"):
        prediction.open_run(str(copy), "model_float16.tflite")


def test_the_command_writes_predictions_and_a_bad_column_is_one_line(titanic_run):
    root, folder = titanic_run

    def predict(*flags):
        return subprocess.run([sys.executable, "-m", "pipelines.predict", f"--model_dir={folder}", *flags],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = root / "cli.csv"
    done = predict(f"--input={unlabeled_csv(root)}", f"--output={output}", "--probabilities")
    assert done.returncode == 0, done.stderr
    assert "120 predictions in" in done.stdout and "note: " in done.stdout and "Boarded" in done.stdout
    assert list(read_csv(output)[0]) == ["PassengerId", "Survived", "probability", "probability_0", "probability_1"]
    (root / "wrong.csv").write_text("Sex,Age\nmale,3\n")
    assert_one_line_error(predict(f"--input={root / 'wrong.csv'}"), "has no columns 'Pclass', 'Name', 'SibSp'",
                          "which the model reads")
    assert_one_line_error(predict("--num_samples=1", "--seed=-5"), "flag --seed=-5", "not an integer in the range")


def test_the_output_is_written_through_what_it_names(titanic_run, tmp_path):
    """A link's target gets the predictions (the link stays); a device or a pipe is written in place, never
    replaced by a regular file; a regular file is replaced whole."""
    import threading
    root, folder = titanic_run
    predictor, new = prediction.open_run(folder), unlabeled_csv(root)

    def predict(output):
        return prediction.predict_file(predictor, new, str(output), Asked("Survived"))
    (tmp_path / "target.csv").write_text("old")
    os.symlink(tmp_path / "target.csv", tmp_path / "link.csv")
    predict(tmp_path / "link.csv")
    assert os.path.islink(tmp_path / "link.csv") and len(read_csv(tmp_path / "target.csv")) == 120
    predict("/dev/null")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    os.mkfifo(tmp_path / "pipe")
    received = []
    reader = threading.Thread(target=lambda: received.append(open(tmp_path / "pipe").read()))
    reader.start()
    predict(tmp_path / "pipe")
    reader.join(timeout=30)
    assert received and len(received[0].splitlines()) == 121 and not os.path.isfile(tmp_path / "pipe")


@pytest.mark.parametrize("output,message", [
    ("/dev/full", "cannot write --output=/dev/full (No space left on device)"),
    ("{tmp}", "is a folder: give a file name in it, such as"),
    ("{tmp}/notes.txt/p.csv", "cannot write --output={tmp}/notes.txt/p.csv"),
    ("/proc/predictions.csv", "cannot write --output=/proc/predictions.csv"),
])
def test_an_output_that_cannot_be_written_is_one_line(titanic_run, tmp_path, output, message):
    root, folder = titanic_run
    (tmp_path / "notes.txt").write_text("kept")
    with pytest.raises(PipelineError, match=re.escape(message.format(tmp=tmp_path))):
        prediction.predict_file(prediction.open_run(folder), unlabeled_csv(root), output.format(tmp=tmp_path),
                                Asked("Survived"))
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_an_interval_from_a_model_that_has_none_is_one_line(titanic_run):
    _, folder = titanic_run
    with pytest.raises(PipelineError, match="--interval: the model in .* has no intervals"):
        prediction.open_run(folder).interval(0.8)


def test_the_output_is_never_the_input_nor_in_the_model_folder(titanic_run, tmp_path):
    check_output = prediction.check_output
    root, folder = titanic_run
    new = unlabeled_csv(root)
    os.link(new, tmp_path / "hard.csv")
    for same in (new, os.path.join(os.path.dirname(new), ".", os.path.basename(new)), tmp_path / "hard.csv"):
        with pytest.raises(PipelineError, match="is the input file .*: writing it would replace the rows read"):
            check_output(str(same), folder, new)
    for inside in (os.path.join(folder, "config.json"), os.path.join(folder, "sub", "p.csv"), folder):
        with pytest.raises(PipelineError, match="is inside --model_dir=.*, which dlpipe-predict only reads"):
            check_output(inside, folder, new)
    check_output(str(tmp_path / "p.csv"), folder, new)


def test_a_killed_predict_leaves_no_temporary_file_behind(titanic_run, tmp_path):
    """SIGTERM removes the half-written file on the way out; SIGKILL cannot, so the next predict to that output
    clears what a dead writer left (never what a live one is writing)."""
    root, folder = titanic_run
    big = titanic.write(root / "big.csv", titanic.passengers(1000, seed=3) * 100)  # 100,000 rows, made fast
    live = tmp_path / f".p.tmp-{os.getpid()}-0a1b2c3d.csv"
    live.write_text("being written")

    def killed(signal_number):
        process = subprocess.Popen([sys.executable, "-m", "pipelines.predict", f"--model_dir={folder}",
                                    f"--input={big}", f"--output={tmp_path / 'p.csv'}"], cwd=ROOT, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while not any(n.startswith(f".p.tmp-{process.pid}-") for n in os.listdir(tmp_path)):
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        process.send_signal(signal_number)
        return process.wait(timeout=60), process.stderr.read()
    code, stderr = killed(signal.SIGTERM)
    assert code == 143 and "error: terminated (SIGTERM); no predictions file was written" in stderr
    assert os.listdir(tmp_path) == [live.name]
    code, _ = killed(signal.SIGKILL)
    assert code == -signal.SIGKILL and len(os.listdir(tmp_path)) == 2
    prediction.predict_file(prediction.open_run(folder), unlabeled_csv(root), str(tmp_path / "p.csv"),
                            Asked("Survived"))
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "p.csv"])


def test_the_predict_stage_labels_new_rows_at_the_end_of_a_pipeline_and_is_reused_until_they_change(titanic_run):
    root, folder = titanic_run
    new = unlabeled_csv(root, count=30)
    flags = (f"--dataset={root / 'train.csv'}", "--label_column=Survived", f"--output_dir={root / 'runs'}",
             "--epochs=8", "--tflite_variants=float32,int8", "--stages=predict", f"--predict_input={new}")
    records = runner.run(config_from_flags(*flags))
    assert records[0].result == "30 predictions" and len(read_csv(os.path.join(folder, "predictions.csv"))) == 30
    assert runner.run(config_from_flags(*flags))[0].result == "reused"
    unlabeled_csv(root, count=31)  # the same path, new contents
    assert runner.run(config_from_flags(*flags))[0].result == "31 predictions"


def test_memory_is_bounded_by_the_batch_over_100000_rows(titanic_run, tmp_path):
    """The process's peak RSS after 100,000 rows is within a few MB of its peak after 5,000."""
    _, folder = titanic_run
    rows = titanic.passengers(1000, seed=2)
    small = titanic.write(tmp_path / "small.csv", rows * 5)
    large = titanic.write(tmp_path / "large.csv", rows * 100)
    script = f"""
import resource
from pipelines import prediction
from pipelines.families import Asked
predictor = prediction.open_run({folder!r})
peaks = []
for path in ({small!r}, {large!r}):
    summary = prediction.predict_file(predictor, path, path + ".out", Asked("Survived"))
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print(summary.examples, *peaks)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    examples, small_peak, large_peak = map(int, done.stdout.split()[-3:])
    assert examples == 100_000 and large_peak - small_peak < 25, (small_peak, large_peak)


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A dense run on a folder of three classes of small PNGs (bright, dark and striped), and new images."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)

    def image(kind):
        if kind == "bright":
            return rng.integers(180, 255, (28, 28), np.uint8)
        if kind == "dark":
            return rng.integers(0, 60, (28, 28), np.uint8)
        return np.tile(np.repeat([0, 255], 4).astype(np.uint8), (28, 4))[:, :28]
    for split, count in (("train", 40), ("new", 6)):
        for kind in ("bright", "dark", "striped"):
            os.makedirs(root / split / kind)
            for i in range(count):
                Image.fromarray(image(kind)).save(root / split / kind / f"{i}.png")
    runner.run(config_from_flags("--task=dense", f"--dataset={root / 'train'}", f"--output_dir={root / 'runs'}",
                                 "--stages=train,export", "--tflite_variants=float32", "--noonnx", "--epochs=10",
                                 "--batch_size=8"))
    return root, str(root / "runs" / "dense")


def test_a_folder_of_photos_is_labelled_and_scored_by_its_class_subfolders(photo_run):
    root, folder = photo_run
    large = np.kron(np.asarray(Image.open(root / "new" / "dark" / "0.png")), np.ones((40, 50), np.uint8))
    Image.fromarray(np.stack([large] * 3, -1)).save(root / "new" / "dark" / "phone.jpg")  # 1120×1400, colour
    predictor = prediction.open_run(folder, "model.tflite")
    summary = prediction.predict_file(predictor, str(root / "new"), str(root / "labelled.csv"), Asked(top_k=2))
    rows = read_csv(root / "labelled.csv")
    assert list(rows[0]) == ["path", "label_1", "probability_1", "label_2", "probability_2"] and len(rows) == 19
    assert summary.scores["examples"] == 19 and summary.scores["accuracy"] == 1.0
    assert next(r for r in rows if r["path"].endswith("phone.jpg"))["label_1"] == "dark"


def test_an_image_that_cannot_be_read_is_named_and_the_others_are_predicted(photo_run, tmp_path):
    root, folder = photo_run
    (tmp_path / "a.png").write_bytes(b"not a png")
    Image.open(root / "new" / "bright" / "0.png").save(tmp_path / "b.png")
    summary = prediction.predict_file(prediction.open_run(folder), str(tmp_path), str(tmp_path / "p.csv"), Asked())
    assert summary.examples == 1 and len(summary.failures) == 1 and "a.png (not an image" in summary.failures[0]
    assert [r["label"] for r in read_csv(tmp_path / "p.csv")] == ["bright"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="empty .* holds no .png or .jpg or .jpeg or .bmp or .gif files"):
        prediction.predict_file(prediction.open_run(folder), str(tmp_path / "empty"), str(tmp_path / "q.csv"),
                                Asked())


def test_a_conditional_gan_draws_samples_of_a_chosen_class(tmp_path):
    runner.run(config_from_flags("--task=gan", "--passes_per_epoch=1", "--batch_size=64", "--max_train_examples=256",
                                 "--max_test_examples=64", "--epochs=1", "--conditional", "--generator_widths=16,8",
                                 "--discriminator_widths=8,16", f"--output_dir={tmp_path}", "--stages=train,export",
                                 "--tflite_variants=float32", "--noonnx"))
    predictor = prediction.open_run(str(tmp_path / "gan"), "model.tflite")
    summary = prediction.write_samples(predictor, str(tmp_path / "samples"), 10, seed=3, class_name="Sneaker")
    assert summary.line.startswith("10 samples in")
    listed = read_csv(tmp_path / "samples" / "samples.csv")
    assert [r["class"] for r in listed] == ["Sneaker"] * 10
    first = np.asarray(Image.open(tmp_path / "samples" / listed[0]["file"]))
    assert first.shape == (28, 28) and Image.open(tmp_path / "samples" / "grid.png").size == (8 * 28, 2 * 28)
    again = prediction.write_samples(predictor, str(tmp_path / "again"), 1, seed=3, class_name="Sneaker")
    assert again.examples == 1 and np.array_equal(np.asarray(Image.open(tmp_path / "again" / "sample_00000.png")),
                                                  first)
    with pytest.raises(PipelineError, match="--class_name=Cat is not one of the classes the model learned"):
        prediction.write_samples(predictor, str(tmp_path / "x"), 1, seed=0, class_name="Cat")
