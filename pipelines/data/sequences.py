"""Sequences to classify, one per row of a wide file: the label and the series' values in order.

    label,t0,t1,t2,…          1	-0.64	-0.64	-0.65	…      (the UCR archive's .tsv: no header, label first;
    walk,0.1,0.4,0.9,…        2	-0.78	-0.79	-0.80	…       --label_column=0)

A sequence task (conv, recurrent, transformer) given a CSV or TSV without a time column reads each row's numeric
cells, in column order, as one univariate series; a task that reads tables (dense) reads the same file as a table.
A file whose first row is all numbers has no header: its columns are then named by position, 0 first.
`--test_dataset` gives the test file of the same layout (a benchmark's official split); otherwise the rows are
split by a fixed random permutation (`test_split` of them to test). The train rows are kept in that shuffled order,
so the validation split the input pipeline carves from their end holds every class (archive files are often
sorted by label). The whole file is read into memory: 10,000 series of 1,000 steps are 40 MB.

Scaling lives in the model (models/sequence.py): the train series' mean and standard deviation, or each series
z-normalised by its own (`--series_scaling=each`, as the UCR archive's data already are).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from pipelines.data import tables
from pipelines.errors import PipelineError

SCALINGS = ("train", "each")  # one mean and std from the train series, or each series by its own
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Sequences:
    """The rows of a wide file (or two: train and test) as series [n, steps, 1] and class indices."""
    label_column: str
    steps: int
    train: tuple[np.ndarray, np.ndarray]  # values [n, steps, 1] float32, labels [n] int64
    test: tuple[np.ndarray, np.ndarray]
    label_names: tuple[str, ...]
    scaling: str = "train"

    def scale(self) -> dict:
        """The model's input scaling (models/sequence.py): the train series' mean and standard deviation."""
        values = self.train[0]
        std = float(values.std())
        return {"mean": [float(values.mean())], "std": [std if std > 0 else 1.0], "classify": True,
                "each": self.scaling == "each"}


def _header(first: list[str], label_column: str | None) -> list[str] | None:
    """The header's names, or None when the first row is data: all numbers, or numbers and one word (a class
    name) that is not the label column's name."""
    words = [cell for cell in first if tables.number(cell) is None]
    return first if len(words) > 1 or (words and words[0] == label_column) else None


def _label_index(path: str, header: list[str] | None, width: int, label_column: str | None) -> int:
    names = header or [str(i) for i in range(width)]
    if label_column is None:
        raise PipelineError(f"--label_column is required: the column of {path} that holds each row's class (its "
                            f"columns: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}; a header-less file's "
                            "are numbered from 0)")
    if label_column in names:
        return names.index(label_column)
    raise PipelineError(f"--label_column={label_column}: {path} has no such column: its columns are "
                        f"{', '.join(names[:8])}{' …' if len(names) > 8 else ''}"
                        + ("" if header else " (a header-less file's columns are numbered from 0)"))


def read_wide(path: str, label_column: str | None,
              steps: int | None = None) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """The file's series [n, steps] float32 and labels (as written), and its header (None if it has none). Given
    the `steps` a trained model reads, rows of that many cells are series without their label (labels None)."""
    rows = tables.read_rows(path)
    first = next(rows, None)
    if first is None:
        raise PipelineError(f"{path} is empty: give one series per row, its label in one column")
    header = _header(first, label_column)
    body = rows if header else iter([first, *rows])
    unlabelled = steps is not None and len(first) == steps
    if steps is not None and len(first) not in (steps, steps + 1):
        raise PipelineError(f"{path}: rows of {len(first)} cells, and the model reads series of {steps} steps: give "
                            f"rows of {steps} values (and the label column, if you have it)")
    label = len(first) if unlabelled else _label_index(path, header, len(first), label_column)
    values, labels = [], []
    for row, cells in enumerate(body, 1):
        if len(cells) != len(first):
            raise PipelineError(f"{path}, data row {row}: {len(cells)} cells where the first row has {len(first)}: "
                                "a wide file's series are of one length (pad shorter ones at their end)")
        numbers = [tables.number(cell) if cell.lower() not in tables.MISSING else None
                   for i, cell in enumerate(cells) if i != label]
        bad = [i for i, n in enumerate(numbers) if n is None]
        if bad:
            column = bad[0] + (bad[0] >= label)
            name = header[column] if header else str(column)
            raise PipelineError(f"{path}, data row {row}, column {name!r}: {cells[column]!r} is not a number: a "
                                "wide file's cells beside the label are the series' values")
        if not unlabelled and not cells[label]:
            raise PipelineError(f"{path}, data row {row}: the label is missing: give every series its class")
        values.append(numbers)
        labels.append(None if unlabelled else cells[label])
    if not values:
        raise PipelineError(f"{path} has no data rows: give one series per row")
    if len(values[0]) < 2:
        raise PipelineError(f"{path}: each row holds {len(values[0])} value beside its label: a series needs steps")
    return np.array(values, np.float32), None if unlabelled else labels, header


def _class_names(labels: list[str]) -> tuple[str, ...]:
    """Class names sorted as numbers when they all are (UCR's 1, 2, 10), else as text."""
    distinct = set(labels)
    if all(tables.number(name) is not None for name in distinct):
        return tuple(sorted(distinct, key=float))
    return tuple(sorted(distinct))


def _test_file(path: str, test_dataset: str, label_column: str | None, steps: int, header):
    """The --test_dataset file's series and labels, of the train file's layout."""
    if not os.path.isfile(test_dataset):
        raise PipelineError(f"--test_dataset={test_dataset}: no such file")
    values, labels, test_header = read_wide(test_dataset, label_column)
    if values.shape[1] != steps:
        raise PipelineError(f"--test_dataset={test_dataset} holds series of {values.shape[1]} steps, and {path} of "
                            f"{steps}: give a test file of the train file's layout")
    if header and test_header and test_header != header:
        raise PipelineError(f"--test_dataset={test_dataset}'s columns differ from {path}'s (first "
                            f"{next(t for h, t in zip(header, test_header) if h != t)!r}): give a test file of the "
                            "train file's layout")
    return values, labels


def prepare(path: str, *, label_column: str | None, test_dataset: str | None, test_split: float,
            scaling: str = "train") -> Sequences:
    """The series of `path` (and of `test_dataset`), checked and split."""
    values, labels, header = read_wide(path, label_column)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(values))  # the train rows' order: classes mixed
    if test_dataset:
        test_values, test_labels = _test_file(path, test_dataset, label_column, values.shape[1], header)
        train_idx = order
    else:
        cut = len(values) - max(1, round(len(values) * test_split))
        train_idx, test_idx = order[:cut], np.sort(order[cut:])
        test_values, test_labels = values[test_idx], [labels[i] for i in test_idx]
    names = _class_names(labels)
    if len(names) < 2:
        raise PipelineError(f"{path}: every series is labelled {names[0]!r}: a classifier needs two classes or more")
    unknown = sorted(set(test_labels) - set(names))
    if unknown:
        raise PipelineError(f"--test_dataset={test_dataset} has the label {unknown[0]!r}, which no train series "
                            "has: a classifier can only answer the classes it learned")
    index = {name: i for i, name in enumerate(names)}

    def split(series: np.ndarray, classes: list[str]):
        return series[..., None], np.array([index[name] for name in classes], np.int64)
    return Sequences(label_column or "", values.shape[1], split(values[train_idx], [labels[i] for i in train_idx]),
                     split(test_values, test_labels), names, scaling)


def examples(values: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices({"window": values, "label": labels})
