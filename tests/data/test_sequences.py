"""Wide files of sequences to classify: headers found or not, the label by name or position, splits that mix the
classes, a test file of the same layout, and bad input as one line."""

import numpy as np
import pytest

from pipelines.data import sequences
from pipelines.errors import PipelineError
from tests import series as made


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_header_less_tsv_reads_its_label_by_position_and_sorts_numeric_classes_as_numbers(tmp_path):
    path = write(tmp_path / "gun.tsv", "2\t0.1\t0.2\t0.3\n10\t1.0\t1.1\t1.2\n1\t0.5\t0.4\t0.3\n2\t0.0\t0.1\t0.2\n")
    read = sequences.prepare(path, label_column="0", test_dataset=None, test_split=0.25)
    assert read.label_names == ("1", "2", "10") and read.steps == 3
    assert read.train[0].shape == (3, 3, 1) and read.test[0].shape == (1, 3, 1)
    everything = np.concatenate([read.train[0], read.test[0]])[..., 0]
    assert sorted(map(tuple, everything.astype(float).round(1).tolist())) == sorted(
        [(0.1, 0.2, 0.3), (1.0, 1.1, 1.2), (0.5, 0.4, 0.3), (0.0, 0.1, 0.2)])  # every row once, label left out


@pytest.mark.parametrize("first,label_column,header", [
    ("label,t0,t1", "label", True),      # words: a header
    ("walk,0.1,0.2", "0", False),        # one word, a class name: data
    ("label,0,1", "label", True),        # pandas' integer column names under the label's
    ("1,0.1,0.2", "0", False),
    ("1,NaN,NaN,0.2", "0", False),      # missing cells are no names (the UCR archive pads with NaN)
    ("1,,,", "0", False),
])
def test_the_first_row_is_a_header_only_when_it_names_columns(first, label_column, header):
    assert (sequences._header(first.split(","), label_column) is not None) == header


def test_the_train_rows_are_shuffled_so_the_validation_split_carved_from_their_end_holds_every_class(tmp_path):
    values, labels = made.shapes(90)
    order = np.argsort(labels, kind="stable")  # a file sorted by label, as archive files often are
    path = tmp_path / "sorted.csv"
    with open(path, "w") as f:
        f.writelines(",".join([labels[i]] + [f"{v:.3f}" for v in values[i]]) + "\n" for i in order)
    read = sequences.prepare(str(path), label_column="0", test_dataset=None, test_split=0.2)
    assert len(set(read.train[1][-10:])) == 3 and len(set(read.test[1])) == 3
    assert len(read.train[1]) + len(read.test[1]) == 90


def test_a_test_file_gives_the_test_split_and_must_share_the_layout(tmp_path):
    train = made.wide_csv(tmp_path / "train.csv", 30)
    test = made.wide_csv(tmp_path / "test.csv", 12, seed=9)
    read = sequences.prepare(train, label_column="label", test_dataset=test, test_split=0.2)
    assert len(read.train[1]) == 30 and len(read.test[1]) == 12
    shorter = made.wide_csv(tmp_path / "short.csv", 12, steps=40)
    with pytest.raises(PipelineError, match="holds series of 40 steps, and .* of 60"):
        sequences.prepare(train, label_column="label", test_dataset=shorter, test_split=0.2)
    with pytest.raises(PipelineError, match="no such file"):
        sequences.prepare(train, label_column="label", test_dataset=str(tmp_path / "none.csv"), test_split=0.2)
    other = write(tmp_path / "other.csv", "label," + ",".join(f"s{i}" for i in range(60)) + "\n"
                  + "bump," + ",".join("0" for _ in range(60)) + "\n")
    with pytest.raises(PipelineError, match=r"columns differ .*\(first 's0'\)"):
        sequences.prepare(train, label_column="label", test_dataset=other, test_split=0.2)


@pytest.mark.parametrize("text,label_column,fragments", [
    ("label,a,b\nx,1,2\ny,1\n", "label", ["data row 2", "2 cells where the first row has 3"]),
    ("label,a,b\nx,1,2\ny,1,oops\n", "label", ["data row 2", "column 'b'", "'oops' is not a number"]),
    ("label,a,b\nx,1,2\ny,1,inf\n", "label", ["data row 2", "column 'b'", "'inf' is not a finite number"]),
    ("label,a,b\nx,1,2\ny,1,1e39\n", "label", ["data row 2", "column 'b'", "beyond float32's range"]),
    ("label,a,b\nx,1,2\n,1,3\n", "label", ["data row 2", "label is missing"]),
    ("label,a,b\nx,1,2\nx,1,3\n", "label", ["every series is labelled 'x'", "two classes"]),
    ("label,a,b\nx,1,2\n", "kind", ["--label_column=kind", "no such column", "label, a, b"]),
    ("label,a,b\nx,1,2\n", None, ["--label_column is required"]),
    ("1,2,3\n", "7", ["--label_column=7", "numbered from 0"]),
    ("label,a\nx,1\ny,2\n", "label", ["1 value beside its label"]),
    ("", "label", ["is empty"]),
])
def test_bad_wide_files_are_one_line(tmp_path, text, label_column, fragments):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(PipelineError) as e:
        sequences.prepare(path, label_column=label_column, test_dataset=None, test_split=0.5)
    assert "\n" not in str(e.value) and all(f in str(e.value) for f in fragments), str(e.value)


def test_a_variable_length_archive_file_pads_each_series_end_with_its_last_value(tmp_path):
    """The UCR archive's variable-length sets pad with NaN; its first row may hold one and is still data."""
    path = write(tmp_path / "var.tsv", "1\t0.5\t0.7\tNaN\tNaN\n2\t1\t2\t3\t4\n1\t0.1\t0.2\t0.3\tNaN\n"
                                       "2\t4\t3\t2\t1\n")
    read = sequences.prepare(path, label_column="0", test_dataset=None, test_split=0.25)
    rows = sorted(map(tuple, np.concatenate([read.train[0], read.test[0]])[..., 0].astype(float).round(2).tolist()))
    assert read.steps == 4 and rows == [(0.1, 0.2, 0.3, 0.3), (0.5, 0.7, 0.7, 0.7), (1, 2, 3, 4), (4, 3, 2, 1)]
    assert read.padding == "last" and not read.scale()["masked"]
    inside = write(tmp_path / "hole.tsv", "1\t0.5\tNaN\t0.7\n2\t1\t2\t3\n")
    with pytest.raises(PipelineError, match=r"data row 1, column '2': a value is missing: .*only at its end"):
        sequences.prepare(inside, label_column="0", test_dataset=None, test_split=0.5)


def test_a_task_that_masks_reads_missing_values_past_a_series_end_where_it_can(tmp_path):
    """MiniRocket computes on each series' own steps (Task.padding "missing"): its series keep NaN past their end
    where they have one channel on the train series' scale and some are shorter; the train range and mean ignore
    the missing steps. Several channels, each series by its own scale, or one length: the last step, as before."""
    path = write(tmp_path / "var.tsv", "1\t0.5\t0.7\tNaN\tNaN\n2\t1\t2\t3\t9\n1\t0.1\t0.2\t0.3\tNaN\n"
                                       "2\t4\t3\t2\t1\n")
    read = sequences.prepare(path, label_column="0", test_dataset=None, test_split=0.25, scaling="train",
                             padding="missing")
    values = np.concatenate([read.train[0], read.test[0]])[..., 0]
    assert read.padding == "missing" and read.scale()["masked"] and np.isnan(values).sum() == 3
    held = values[~np.isnan(values)]
    scale = read.scale()
    train = read.train[0][~np.isnan(read.train[0])]
    assert scale["low"] == min(train.min(), 0) and scale["high"] == train.max() <= held.max()
    np.testing.assert_allclose(scale["mean"], [train.mean()], rtol=1e-6)
    for settings in ({"scaling": "each", "padding": "missing"}, {"scaling": "train", "padding": "last"}):
        read = sequences.prepare(path, label_column="0", test_dataset=None, test_split=0.25, **settings)
        assert read.padding == "last" and not np.isnan(read.train[0]).any()
    long = write(tmp_path / "long.csv", "recording,t,activity,acc,gyro\na,0,walk,1,10\na,1,walk,2,20\n"
                 "b,0,run,5,50\n")
    read = sequences.prepare_long(long, label_column="activity", layout=LAYOUT, test_dataset=None, test_split=0.5,
                                  scaling="train", padding="missing")
    assert read.padding == "last" and not np.isnan(read.train[0]).any()  # two channels
    fixed = write(tmp_path / "fixed.tsv", "1\t1\t2\n2\t3\t4\n")
    read = sequences.prepare(fixed, label_column="0", test_dataset=None, test_split=0.5, scaling="train",
                             padding="missing")
    assert read.padding == "last"  # one length: nothing is missing


def test_a_test_label_the_train_file_never_has_is_one_line(tmp_path):
    train = write(tmp_path / "train.csv", "label,a,b\nx,1,2\ny,2,1\n")
    test = write(tmp_path / "test.csv", "label,a,b\nz,1,2\n")
    with pytest.raises(PipelineError, match="has the label 'z', which no train series has"):
        sequences.prepare(train, label_column="label", test_dataset=test, test_split=0.5)


def test_new_rows_may_leave_the_label_out_and_must_have_the_models_steps(tmp_path):
    unlabelled = write(tmp_path / "new.csv", "t0,t1,t2\n1,2,3\n4,5,6\n")
    values, labels, _ = sequences.read_wide(unlabelled, "label", steps=3)
    assert values.tolist() == [[1, 2, 3], [4, 5, 6]] and labels is None
    labelled = write(tmp_path / "labelled.csv", "label,t0,t1,t2\nx,1,2,3\n")
    assert sequences.read_wide(labelled, "label", steps=3)[1] == ["x"]
    with pytest.raises(PipelineError, match="rows of 2 cells, and the model reads series of 3 steps"):
        sequences.read_wide(write(tmp_path / "short.csv", "t0,t1\n1,2\n"), "label", steps=3)


def test_the_scale_is_the_train_series_and_each_is_asked_for_by_name(tmp_path):
    path = made.wide_csv(tmp_path / "s.csv", 30)
    read = sequences.prepare(path, label_column="label", test_dataset=None, test_split=0.2, scaling="each")
    scale = read.scale()
    assert scale["classify"] and scale["each"]
    np.testing.assert_allclose(scale["mean"], [read.train[0].mean()], rtol=1e-5)


LAYOUT = {"series_id_column": "recording", "time_column": "t"}


def test_a_long_file_gives_one_multichannel_series_per_id_in_time_order_padded_as_its_task_reads_it(tmp_path):
    path = write(tmp_path / "long.csv", "recording,t,activity,acc,gyro,note\n"
                 "b,1,run,5,50,x\na,0,walk,1,10,x\na,2,walk,3,30,x\na,1,walk,2,20,x\nb,0,run,4,40,x\n")
    values, labels, ids, columns = sequences.read_long(path, layout=LAYOUT, label_column="activity",
                                                       ignored=("note",))
    assert ids == ["b", "a"] and labels == ["run", "walk"] and columns == ["acc", "gyro"]
    assert np.isnan(values[0, 2]).all() and values[0, :2].tolist() == [[4, 40], [5, 50]]  # missing past its end
    assert sequences.padded(values, "last").tolist() == [[[4, 40], [5, 50], [5, 50]], [[1, 10], [2, 20], [3, 30]]]
    assert sequences.padded(values, "missing") is values


@pytest.mark.parametrize("text,layout,fragments", [
    ("recording,t,activity,acc\na,0,walk,1\na,1,run,2\n", LAYOUT,
     ["series 'a' is labelled both 'walk' and 'run'", "--horizon"]),
    ("recording,t,activity,acc\na,0,walk,1\na,0,walk,2\n", LAYOUT, ["series 'a' has a time twice"]),
    ("recording,t,activity,acc\na,0,walk,high\n", LAYOUT, ["column 'acc', data row 1", "'high' is not a number",
                                                           "--ignore_columns=acc"]),
    ("rec,t,activity,acc\na,0,walk,1\n", LAYOUT, ["--series_id_column=recording", "no such column"]),
    ("recording,t,activity,acc\na,0,walk,1\n", {**LAYOUT, "series_id_column": None},
     ["--series_id_column is required"]),
    ("recording,t,activity,acc\na,noon,walk,1\n", LAYOUT, ["column 't'", "'noon' is not a time"]),
    ("recording,t,activity,acc\na,inf,walk,1\n", LAYOUT, ["column 't'", "'inf' is not a time"]),
    ("recording,t,activity,acc\na,0,walk,-inf\n", LAYOUT,
     ["column 'acc'", "'-inf' is not a finite number", "--ignore_columns=acc"]),
    ("recording,t,activity\na,0,walk\n", LAYOUT, ["no column of values"]),
])
def test_bad_long_files_are_one_line(tmp_path, text, layout, fragments):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(PipelineError) as e:
        sequences.prepare_long(path, label_column="activity", layout=layout, test_dataset=None, test_split=0.5)
    assert "\n" not in str(e.value) and all(f in str(e.value) for f in fragments), str(e.value)


def test_new_long_series_are_read_in_the_trained_columns_and_may_not_outgrow_the_model(tmp_path):
    path = write(tmp_path / "new.csv", "gyro,t,recording,acc\n10,0,x,1\n20,1,x,2\n")
    values, labels, ids, _ = sequences.read_long(path, layout=LAYOUT, label_column="activity",
                                                 numeric=["acc", "gyro"], steps=4)
    assert labels is None and ids == ["x"] and np.isnan(values[0, 2:]).all()
    assert sequences.padded(values, "last").tolist() == [[[1, 10], [2, 20], [2, 20], [2, 20]]]
    with pytest.raises(PipelineError, match="series 'x' has 2 steps, and the model reads at most 1"):
        sequences.read_long(path, layout=LAYOUT, label_column="activity", numeric=["acc", "gyro"], steps=1)
    with pytest.raises(PipelineError, match="no column 'temp', which the model reads"):
        sequences.read_long(path, layout=LAYOUT, label_column="activity", numeric=["acc", "temp"], steps=4)


def test_a_test_file_with_longer_series_pads_both_files_to_its_length(tmp_path):
    """The archive's official splits: JapaneseVowels' longest test series (29 steps) outgrows its train series
    (26). Both files are read at the longer length, each shorter series ending in its last step."""
    train = write(tmp_path / "train.csv", "recording,t,activity,acc\na,0,walk,1\na,1,walk,2\nb,0,run,5\n")
    test = write(tmp_path / "test.csv", "recording,t,activity,acc\nc,0,run,7\nc,1,run,8\nc,2,run,9\n")
    read = sequences.prepare_long(train, label_column="activity", layout=LAYOUT, test_dataset=test, test_split=0.5)
    assert read.steps == 3 and read.test[0][:, :, 0].tolist() == [[7, 8, 9]]
    assert sorted(read.train[0][:, :, 0].tolist()) == [[1, 2, 2], [5, 5, 5]]
    wide_train = write(tmp_path / "train.tsv", "walk\t1\t2\t3\nrun\t4\t5\tNaN\n")
    wide_test = write(tmp_path / "test.tsv", "run\t6\t7\t8\t9\n")
    read = sequences.prepare(wide_train, label_column="0", test_dataset=wide_test, test_split=0.5)
    assert read.steps == 4 and sorted(read.train[0][:, :, 0].tolist()) == [[1, 2, 3, 3], [4, 5, 5, 5]]


def test_infinite_and_numeric_class_names_are_ordered_as_tables_order_them(tmp_path):
    path = write(tmp_path / "classes.csv", "label,a,b\n10,1,2\n2,2,1\n1,0,0\n")
    assert sequences.prepare(path, label_column="label", test_dataset=None, test_split=0.34).label_names == (
        "1", "2", "10")
    path = write(tmp_path / "words.csv", "label,a,b\ninf,1,2\n2,2,1\n")
    assert sequences.prepare(path, label_column="label", test_dataset=None, test_split=0.5).label_names == ("2", "inf")


def test_a_word_in_the_label_column_makes_a_file_with_a_time_column_series_to_classify(tmp_path):
    words = made.long_csv(tmp_path / "long.csv", 6)
    numbers = made.monthly_csv(tmp_path / "monthly.csv", made.seasonal(30))
    assert sequences.is_long_classification(words, "activity", "auto")
    assert not sequences.is_long_classification(numbers, "passengers", "auto")
    assert sequences.is_long_classification(numbers, "passengers", "classification")
