"""A CSV table of one's own: columns, the problem, missing values, the split, and bad tables as one line."""

import numpy as np
import pytest

from models.dense import build_dense_classifier
from models.table import TableEncoder, cell_words, describe_columns
from pipelines.data import sources, tables
from pipelines.errors import PipelineError


def write(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n")
    return str(path)


def read_table(path, label_column, problem, test_split, **naming):
    """The table as tables.prepare reads it into a cache beside it, and its splits as arrays."""
    table, splits = tables.prepare(path, naming=tables.Naming(label_column, **naming), problem=problem,
                                   test_split=test_split, cache_dir=path + ".cache", data_hash=sources.data_hash(path))
    arrays = {name: next(iter(split.read().batch(1 << 20).as_numpy_iterator())) for name, split in splits.items()}
    return table, arrays


def test_columns_problem_missing_cells_and_dropped_rows(tmp_path):
    rows = [[i % 9, "red" if i % 2 else "blue" if i % 3 else "", f"{i * 1.5}" if i % 7 else "",
             "yes" if i % 3 else "no"] for i in range(40)]
    rows[5][3] = ""  # no label: dropped
    table, splits = read_table(write(tmp_path / "t.csv", ["n", "colour name", "x", "ok"], rows), "ok", "auto", 0.25)
    assert table.problem == "classification" and table.label_names == ("no", "yes")
    assert table.numeric == ("n", "x") and table.categorical == ("colour name",)
    assert table.dropped_rows == 1 and table.missing == {"n": 0, "colour name": 7, "x": 6}
    assert table.inputs["colour name"] == "colour_name"
    train, test = splits["train"], splits["test"]
    assert len(train["label"]) + len(test["label"]) == 39
    assert np.bincount(test["label"]).tolist() == [4, 6]  # a quarter of each class (14 no, 25 yes)
    assert np.isnan(train["x"]).any() and set(train["colour_name"]) == {b"red", b"blue", b""}


@pytest.mark.parametrize("labels,problem", [
    ([1.5, 2.25, 3.0, 10.0] * 10, "regression"),
    ([0, 1, 2] * 10, "classification"),  # few integers: classes
    (list(range(40)), "regression"),  # many integers: a quantity
])
def test_the_problem_follows_the_labels(tmp_path, labels, problem):
    path = write(tmp_path / "t.csv", ["a", "y"], [[i % 7, y] for i, y in enumerate(labels)])
    assert read_table(path, "y", "auto", 0.2)[0].problem == problem


@pytest.mark.parametrize("header,rows,label,problem,message", [
    (["a", "b"], [[1, 2]] * 10, None, "auto", "--label_column is required for a CSV data set: its columns are a, b"),
    (["a", "b"], [[1, 2]] * 10, "c", "auto", "has no column 'c': its columns are a, b"),
    (["a", "b"], [[i, 1] for i in range(10)], "b", "classification", "the label column 'b' has one value"),
    (["a", "b"], [[i, "x"] for i in range(10)], "b", "regression", "the label 'x' .* is not a number"),
    (["a", "b"], [[i if i != 17 else "12O", i % 2] for i in range(40)], "b", "auto",
     r"column 'a', data row 18: '12O' is not a number, and the column's other cells are"),
    (["b"], [[1]] * 10, "b", "auto", "has only the label column"),
    # The hostile tables of the third probe: each read wrongly or ended in a traceback before.
    (["a", "y"], [[1, 2, 3]] + [[i, i % 2] for i in range(20)], "y", "auto",
     "data row 1: 3 cells, and the header names 2 columns"),
    (["a", "b", "y"], [[i, i % 2] for i in range(20)], "y", "auto", "data row 1: 2 cells, and the header names 3"),
    (["x", "x", "y"], [[1, 2, i % 2] for i in range(20)], "y", "auto", "two columns are named 'x'"),
    (["a", ""], [[1, 2]] * 10, "a", "auto", "column 2 of the header has no name"),
    (["a", "y"], [[i, 1e39 if i == 7 else i * 1.5] for i in range(30)], "y", "auto",
     r"label column 'y', labelled row 8: '1e\+39' is beyond float32's range"),
    (["a", "y"], [[1e39 if i == 7 else i, i % 2] for i in range(30)], "y", "auto",
     r"column 'a', data row 8: '1e\+39' is beyond float32's range"),
    (["a", "y"], [["inf" if i % 10 == 3 else i, i % 2] for i in range(40)], "y", "auto",
     r"column 'a', data row 4: 'inf' is not a finite number"),
    (["a", "y"], [[i, ""] for i in range(10)], "y", "auto", "the label column 'y' is empty in every row"),
])
def test_bad_tables_are_one_line_naming_the_column_or_row(tmp_path, header, rows, label, problem, message):
    with pytest.raises(PipelineError, match=message):
        read_table(write(tmp_path / "t.csv", header, rows), label, problem, 0.2)


def test_the_model_encodes_columns_as_features_json_says(tmp_path):
    """What an app does with features.json: the same vector the model's own encoder makes."""
    train = {"size": np.array([1.0, 3.0, np.nan], np.float32), "kind": np.array(["a", "b", ""], dtype=object)}
    columns = describe_columns(train)
    assert columns[0] == {"input": "size", "kind": "numeric", "mean": 2.0, "std": 1.0}
    assert columns[1] == {"input": "kind", "kind": "categorical", "categories": ["a", "b"]}
    model = build_dense_classifier((), 2, table=columns)
    encoder = model.get_layer("table_encoder")
    import tensorflow as tf
    vectors = np.asarray(encoder({"size": tf.constant([4.0, np.nan]), "kind": tf.constant(["b", "zebra"])}))
    np.testing.assert_allclose(vectors, [[2.0, 0, 0, 1], [0.0, 1, 0, 0]])  # missing → mean; unseen → entry 0


def test_ids_free_text_and_constant_columns_are_left_out_with_why_and_kept_when_named(tmp_path):
    rows = [[1000 + i, f"Person {i}", f"T{(i * 7919) % 10_000}", "x", "", ["a", "b", "c"][i % 3], i % 5, i % 2]
            for i in range(60)]
    path = write(tmp_path / "t.csv", ["id", "name", "ticket", "same", "empty", "group", "n", "y"], rows)
    table, splits = read_table(path, "y", "auto", 0.2)
    assert table.numeric == ("n",) and table.categorical == ("group",) and table.ids == ("id",)
    assert table.left_out["id"].startswith("an ID (a different whole number in every row)")
    assert table.left_out["name"].startswith("an ID or codes (60 different values in 60 rows, and no word in 1%–99%")
    assert "ticket" in table.left_out and "--keep_columns=ticket keeps it" in table.left_out["ticket"]
    assert table.left_out["same"].startswith("the same value ('x')") and table.left_out["empty"] == \
        "empty in every row; --keep_columns=empty keeps it"
    assert set(splits["train"]) == {"group", "n", "label"}
    uses = {row["column"]: row["use"] for row in table.usage()}
    assert uses["group"] == "category with 3 values" and uses["y"] == "label (classification)"
    assert uses["name"].startswith("left out: an ID or codes")
    # Named by the user: an id column (carried, not a feature), an ignored one, one kept although it looks like text.
    table, splits = read_table(path, "y", "auto", 0.2, ids=("ticket",), ignored=("group",), kept=("name",))
    assert table.ids == ("id", "ticket") and table.categorical == ("name",) and "group" not in splits["train"]
    assert table.left_out["ticket"].startswith("the id column (--id_column)")


def test_a_column_of_names_with_titles_is_text_whose_frequent_words_are_features(tmp_path):
    """Kaggle's Name column: every cell different, its titles shared. Read as text, not left out; encoded as the
    words in at least 1% (and 5) of the train rows, a cell's other words (its own name) as nothing."""
    import tensorflow as tf
    titles = ["Mr", "Mrs", "Miss", "Master"]
    rows = [[f"Surname{i} {titles[i % 4]}. Given{i}", i % 3, i % 2] for i in range(80)]
    table, splits = read_table(write(tmp_path / "t.csv", ["Name", "n", "y"], rows), "y", "auto", 0.25)
    assert table.text == ("Name",) and table.categorical == () and "Name" not in table.left_out
    assert {row["column"]: row["use"] for row in table.usage()}["Name"] == "text: its frequent words"
    (column, _) = describe_columns({name: splits["train"][name] for name in ("Name", "n")}, text=["Name"])
    assert column == {"input": "Name", "kind": "text", "words": ["master", "miss", "mr", "mrs"]}
    encoder = TableEncoder([column])
    cells = ["Allen, Mr. William", "MISS LAINA / Mrs", "", "Master's 3rd", "Zola"]
    vectors = np.asarray(encoder({"Name": tf.constant(cells)}))
    np.testing.assert_array_equal(vectors, [[0, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    # What an app does with features.json: the same words in Python (cell_words), letters of any script.
    np.testing.assert_array_equal(vectors, [[float(w in cell_words(c)) for w in column["words"]] for c in cells])
    accented = describe_columns({"t": np.array(["Åsa Öberg"] * 60 + [""] * 600, object)}, text=["t"])[0]
    assert accented["words"] == ["åsa", "öberg"]
    np.testing.assert_array_equal(np.asarray(TableEncoder([accented])({"t": tf.constant(["ÅSA", "öberg-x"])})),
                                  [[1, 0], [0, 1]])


def test_word_counts_stay_bounded_and_keep_frequent_words(monkeypatch):
    import models.table
    monkeypatch.setattr(models.table, "MAX_COUNTED_WORDS", 100)
    counts = models.table.WordCounts()
    for i in range(1000):  # a thousand different names, every tenth row a title
        counts.add(f"name{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}" + (" sir" if i % 10 else ""))
        assert len(counts.counts) <= 101
    assert counts.frequent() == ["sir"] and counts.rows == 1000


def test_a_column_of_few_repeated_numbers_or_floats_is_a_feature_not_an_id(tmp_path):
    rows = [[i % 50, i * 0.37, 5 * i, i % 2] for i in range(100)]  # repeats; fractions; whole numbers far apart
    table, _ = read_table(write(tmp_path / "t.csv", ["small", "fare", "spread", "y"], rows), "y", "auto", 0.2)
    assert table.numeric == ("small", "fare", "spread") and not table.left_out


@pytest.mark.parametrize("naming,message", [
    (dict(ids=("nope",)), "--id_column: .* has no column 'nope': its columns are a, b, y"),
    (dict(ignored=("y",)), "--ignore_columns names the label column 'y'"),
    (dict(ids=("a",), kept=("a",)), "'a' is named by both --id_column and --keep_columns"),
    (dict(ids=("a",), ignored=("b",)), "has only the label column 'y' and the columns --id_column and"),
])
def test_named_columns_that_cannot_be_are_one_line(tmp_path, naming, message):
    path = write(tmp_path / "t.csv", ["a", "b", "y"], [[i % 3, i % 4, i % 2] for i in range(30)])
    with pytest.raises(PipelineError, match=message):
        read_table(path, "y", "auto", 0.2, **naming)


@pytest.mark.parametrize("label", ["kind", "amount"])  # a classifier's model, a regressor's
def test_columns_named_as_the_models_own_operations_train_and_export(tmp_path, label):
    """A column called value, logits or table_encoder (a price table's "value" is common) once made Keras refuse
    the model at export: the name was the served output's, or the encoder's."""
    import json

    from pipelines import runner
    from tests.conftest import config_from_flags
    rng = np.random.default_rng(0)
    columns = sorted(tables.RESERVED)
    lines = [",".join([*columns, "kind", "amount"])]
    for _ in range(120):
        row = rng.normal(size=len(columns))
        lines.append(",".join([*(f"{v:.4f}" for v in row), "up" if row[0] > 0 else "down", f"{row.sum():.4f}"]))
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    runner.run(config_from_flags(f"--dataset={tmp_path / 't.csv'}", f"--label_column={label}", "--epochs=1",
                                 "--stages=train,export", "--tflite_variants=float32", "--noonnx",
                                 f"--output_dir={tmp_path}"))
    trained_on = json.loads((tmp_path / "dense" / "config.json").read_text())["trained_on"]
    inputs = [name for _, name in trained_on["columns"]]
    assert len(inputs) == len(columns) + 1 and not set(inputs) & tables.RESERVED
    assert (tmp_path / "dense" / "model.tflite").exists()
