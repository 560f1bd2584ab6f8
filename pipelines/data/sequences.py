"""Sequences to classify: one per row of a wide file (the label and the series' values in order), or one row per
step of a long file.

    label,t0,t1,t2,…          1	-0.64	-0.64	-0.65	…      (the UCR archive's .tsv: no header, label first;
    walk,0.1,0.4,0.9,…        2	-0.78	-0.79	-0.80	…       --label_column=0)

A sequence task (conv, recurrent, transformer) given a CSV or TSV without a time column reads each row's numeric
cells, in column order, as one univariate series; a task that reads tables (dense) reads the same file as a table.
A file whose first row is all numbers (or missing cells) has no header: its columns are then named by position, 0
first. A shorter series is padded at its row's end with missing cells (NaN, as the UCR archive's variable-length
sets are), as a long file's shorter series are (`padded` says what the model reads there).
`--test_dataset` gives the test file of the same layout (a benchmark's official split); otherwise the rows are
split by a fixed random permutation (`test_split` of them to test). The train rows are kept in that shuffled order,
so the validation split the input pipeline carves from their end holds every class (archive files are often
sorted by label). The whole file is read into memory: 10,000 series of 1,000 steps are 40 MB.

A long file has one row per step: `--series_id_column` names each series, `--time_column` orders its steps, the
label is constant within a series, and every other numeric column is one of its channels (multivariate). Series of
different lengths are padded at their end to the longest of the train and test files. What a model reads past a
series' end is its task's choice (Task.padding): the series' last step repeated (a flat tail, which a network sees
and learns to see), or the missing values themselves (NaN), which MiniRocket masks: it computes on each series'
own steps (models/rocket.py). The missing values are kept where the series have one channel on one scale (the
int8 file's input then keeps its lowest code for them) and some series are shorter; otherwise the tail is flat.

Scaling lives in the model (models/sequence.py): each series z-normalised by its own mean and standard deviation
(`--series_scaling=each`; the UCR archive's data already are), or all by the train series' (the task says which
is its default: Task.series_scaling).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from pipelines.data import series, tables
from pipelines.errors import PipelineError

SCALINGS = ("train", "each")  # one mean and std from the train series, or each series by its own
PADDINGS = ("last", "missing")  # past a shorter series' end: its last step repeated, or NaN (`padded`)
SPLIT_SEED = 0
MIN_STEPS = 10  # a header-less file of numbers with more columns than this is an archive of series


@dataclasses.dataclass(frozen=True)
class Sequences:
    """The series of a file (or two: train and test) as [n, steps, columns] values and class indices."""
    label_column: str
    steps: int
    train: tuple[np.ndarray, np.ndarray]  # values [n, steps, columns] float32, labels [n] int64
    test: tuple[np.ndarray, np.ndarray]
    label_names: tuple[str, ...]
    scaling: str = "each"
    columns: tuple[str, ...] = ("value",)  # a long file's numeric columns, in the model's order
    layout: dict = dataclasses.field(default_factory=dict)  # a long file's id and time columns
    padding: str = "last"  # what the series hold past their end (PADDINGS)

    def scale(self) -> dict:
        """The model's input scaling (models/sequence.py): each column's mean and standard deviation over the
        train series, and the range of all their values (MiniRocket's lattice, models/rocket.py)."""
        values = self.train[0].reshape(-1, self.train[0].shape[-1])
        values = values[~np.isnan(values).any(axis=1)]  # the steps past a series' end hold none
        std = values.std(axis=0)
        return {"mean": values.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist(), "classify": True,
                "each": self.scaling == "each", "low": float(values.min(initial=0.0)),
                "high": float(values.max(initial=0.0)), "masked": self.padding == "missing"}


def is_archive_file(path: str) -> bool:
    """Whether `path` is laid out as the UCR/UEA archive's files are: no header, every cell a number (or missing)
    but at most one (a class name), more than MIN_STEPS cells a row. Given one without --task, dlpipe classifies
    its rows as sequences."""
    if not os.path.isfile(path) or not path.lower().endswith((".csv", ".tsv", ".txt")):
        return False
    try:
        first = next(tables.read_rows(path), None)
    except PipelineError:
        return False
    return bool(first) and len(first) > MIN_STEPS and _header(first, None) is None


def _header(first: list[str], label_column: str | None) -> list[str] | None:
    """The header's names, or None when the first row is data: all numbers, or numbers and one word (a class
    name) that is not the label column's name."""
    words = [cell for cell in first if not tables.is_number(cell) and cell.lower() not in tables.MISSING]
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
        named = [(header[i] if header else str(i), cell) for i, cell in enumerate(cells) if i != label]
        numbers = _row_values(named, path, row)
        if not unlabelled and not cells[label]:
            raise PipelineError(f"{path}, data row {row}: the label is missing: give every series its class")
        values.append(numbers)
        labels.append(None if unlabelled else cells[label])
    if not values:
        raise PipelineError(f"{path} has no data rows: give one series per row")
    if len(values[0]) < 2:
        raise PipelineError(f"{path}: each row holds {len(values[0])} value beside its label: a series needs steps")
    return np.array(values, np.float32), None if unlabelled else labels, header


def _row_values(cells: list[tuple[str, str]], path: str, row: int) -> list[float]:
    """A wide row's values; missing cells at its end (NaN, empty: how the UCR archive pads its shorter series)
    stay NaN, as a long file's shorter series are padded (`padded`)."""
    filled = len(cells)
    while filled and cells[filled - 1][1].strip().lower() in tables.MISSING:
        filled -= 1
    if filled < min(2, len(cells)):
        raise PipelineError(f"{path}, data row {row}: {filled} value{'s' * (filled != 1)} before its padding: a "
                            "series needs steps")
    values = [_cell(path, row, column, text) for column, text in cells[:filled]]
    return values + [np.nan] * (len(cells) - filled)


def _cell(path: str, row: int, column: str, text: str) -> float:
    """A wide file's value, or one line naming it: missing, a word, or a number a model cannot take."""
    try:
        value = None if text.lower() in tables.MISSING else tables.number(text)
        what = f"{text!r} is not a number"
    except tables.CellError as e:
        value, what = None, str(e)
    if value is None:
        missing = text.strip().lower() in tables.MISSING
        raise PipelineError(f"{path}, data row {row}, column {column!r}: {'a value is missing' if missing else what}"
                            ": a wide file's cells beside the label are the series' values (missing ones only at "
                            "its end, as padding)")
    return value


def _class_names(labels: list[str]) -> tuple[str, ...]:
    """Class names sorted as numbers when they all are (UCR's 1, 2, 10), else as text (tables.class_order)."""
    values = {}
    for name in set(labels):
        try:
            values[name] = tables.number(name)
        except tables.CellError:
            values[name] = None
    return tables.class_order(values)


def _test_file(path: str, test_dataset: str, label_column: str | None, steps: int, header):
    """The --test_dataset file's series and labels, of the train file's layout."""
    if not os.path.isfile(test_dataset):
        raise PipelineError(f"--test_dataset={test_dataset}: no such file")
    values, labels, test_header = read_wide(test_dataset, label_column)
    if values.shape[1] != steps and (header or test_header):
        raise PipelineError(f"--test_dataset={test_dataset} holds series of {values.shape[1]} steps, and {path} of "
                            f"{steps}: give a test file of the train file's layout")
    if header and test_header and test_header != header:
        raise PipelineError(f"--test_dataset={test_dataset}'s columns differ from {path}'s (first "
                            f"{next(t for h, t in zip(header, test_header) if h != t)!r}): give a test file of the "
                            "train file's layout")
    return values, labels


def _with_missing(values: np.ndarray, steps: int) -> np.ndarray:
    """Series ([steps, columns], or [n, steps, columns]) padded at their end to `steps` with NaN."""
    tail = np.full((*values.shape[:-2], steps - values.shape[-2], values.shape[-1]), np.nan, values.dtype)
    return np.concatenate([values, tail], axis=-2)


def _one_length(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The train and test series [n, steps, columns] padded to the longer file's steps with NaN (a test file's
    longest series may be longer than the train file's: the archive's JapaneseVowels, 26 and 29)."""
    steps = max(train.shape[1], test.shape[1])
    return _with_missing(train, steps), _with_missing(test, steps)


def padding_of(asked: str, scaling: str, *series: np.ndarray) -> str:
    """What series padded with NaN hold past their end for a task that asks `asked` (PADDINGS): the missing values
    where there are some and the series have one channel on one scale (the train series'), otherwise the last
    step."""
    shorter = any(np.isnan(x).any() for x in series)
    one = all(x.shape[-1] == 1 for x in series) and scaling == "train"
    return "missing" if asked == "missing" and shorter and one else "last"


def padded(values: np.ndarray, padding: str) -> np.ndarray:
    """Series [n, steps, columns] padded past their end with NaN, as a model reads them (`padding_of`): as they
    are, or with their last step repeated there (a flat tail)."""
    if padding == "missing" or not np.isnan(values).any():
        return values
    held = ~np.isnan(values).any(axis=-1)  # [n, steps]
    lengths = np.where(held.any(axis=1), held.shape[1] - np.argmax(held[:, ::-1], axis=1), 1)
    last = np.take_along_axis(values, (lengths - 1)[:, None, None], axis=1)  # [n, 1, columns]
    return np.where(np.arange(values.shape[1])[None, :, None] < lengths[:, None, None], values, last)


def prepare(path: str, *, label_column: str | None, test_dataset: str | None, test_split: float,
            scaling: str = "each", padding: str = "last") -> Sequences:
    """The series of a wide file at `path` (and of `test_dataset`), checked and split; `padding`: what the task
    reads past a shorter series' end (PADDINGS)."""
    values, labels, header = read_wide(path, label_column)
    test = None
    if test_dataset:
        test = _test_file(path, test_dataset, label_column, values.shape[1], header)
        values, test_values = _one_length(values[..., None], test[0][..., None])
        test = test_values, test[1]
    else:
        values = values[..., None]
    return _split(path, values, labels, test, test_dataset, test_split, padding,
                  label_column=label_column or "", scaling=scaling)


def _split(path: str, values: np.ndarray, labels: list[str], test, test_dataset: str | None, test_split: float,
           padding: str, **fields) -> Sequences:
    """Train and test (the test file's, or `test_split` of the series by a fixed permutation), the classes named,
    padded as the task reads them (`padding_of`)."""
    padding = padding_of(padding, fields["scaling"], values, *([] if test is None else [test[0]]))
    values = padded(values, padding)
    test = None if test is None else (padded(test[0], padding), test[1])
    order = np.random.default_rng(SPLIT_SEED).permutation(len(values))  # the train rows' order: classes mixed
    if test is not None:
        train_idx, (test_values, test_labels) = order, test
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
        return series, np.array([index[name] for name in classes], np.int64)
    return Sequences(steps=values.shape[1], train=split(values[train_idx], [labels[i] for i in train_idx]),
                     test=split(test_values, test_labels), label_names=names, padding=padding, **fields)


def is_long_classification(path: str, label_column: str | None, problem: str) -> bool:
    """Whether a file with a time column holds series to classify: --problem=classification, or a label column
    with a word in its first rows (a class name; a forecast's label is a number)."""
    if problem != "auto" or label_column is None:
        return problem == "classification"
    rows = tables.read_rows(path)
    header = next(rows, None) or []
    if label_column not in header:
        return False
    at = header.index(label_column)
    for _, cells in zip(range(2000), rows):
        cell = cells[at] if at < len(cells) else ""
        if cell.lower() not in tables.MISSING and not tables.is_number(cell):
            return True
    return False


def _long_columns(path: str, header: list[str], layout: dict, label_column: str | None, ignored, numeric):
    """The numeric columns a long file's series are made of (the trained model's, when it names them)."""
    for name, flag in ((layout["series_id_column"], "--series_id_column"), (layout["time_column"], "--time_column")):
        if name is None:
            raise PipelineError(f"{flag} is required: a file of series to classify has one row per step, the column "
                                f"--series_id_column naming each series and --time_column ordering its steps")
        if name not in header:
            raise PipelineError(f"{flag}={name}: {path} has no such column: its columns are {', '.join(header)}")
    if numeric is None:
        if label_column not in header:
            raise PipelineError(f"--label_column={label_column}: {path} has no such column: its columns are "
                                f"{', '.join(header)}")
        numeric = [c for c in header if c not in (*layout.values(), label_column, *ignored)]
    missing = [c for c in numeric if c not in header]
    if missing or not numeric:
        raise PipelineError(f"{path} has no column {missing[0]!r}, which the model reads: its columns are "
                            f"{', '.join(header)}" if missing else f"{path} has no column of values beside the id, "
                            "time and label columns")
    return numeric


def read_long(path: str, *, layout: dict, label_column: str | None, ignored=(), numeric=None, steps: int | None = None):
    """A long file's series: one row per step, `layout`'s series_id_column naming each series and time_column
    ordering its steps, a label constant within a series. Returns the values [n, steps, columns] (shorter series
    padded at their end with NaN, to the longest or to the model's `steps`: `padded`), the labels (None when the
    file has no label column and `numeric` names the trained model's columns), the ids and the numeric columns."""
    lines = tables.read_rows(path)
    header = next(lines, None) or []
    rows = list(enumerate(lines, 1))
    numeric = _long_columns(path, header, layout, label_column, ignored, numeric)
    if not rows:
        raise PipelineError(f"{path} has no data rows: give one row per step of each series")
    cells = {c: [r[header.index(c)] if header.index(c) < len(r) else "" for _, r in rows] for c in header}
    numbers = [n for n, _ in rows]
    times = series.parse_times(path, layout["time_column"], cells[layout["time_column"]], numbers)
    values = np.stack([series.column_values(path, c, cells[c], numbers, label=False) for c in numeric], -1)
    ids, labelled = cells[layout["series_id_column"]], label_column in header
    found = []
    for name in dict.fromkeys(ids):
        mine = np.array([i for i, v in enumerate(ids) if v == name])
        mine = mine[np.argsort(times[mine], kind="stable")]
        classes = dict.fromkeys(cells[label_column][i] for i in mine) if labelled else {None: None}
        if len(classes) > 1:
            first, second = list(classes)[:2]
            raise PipelineError(f"{path}: series {name!r} is labelled both {first!r} and {second!r}: a series to "
                                "classify has one label (to forecast a numeric column, give --horizon)")
        if np.any(times[mine][1:] == times[mine][:-1]):
            raise PipelineError(f"{path}: series {name!r} has a time twice in column {layout['time_column']!r}: "
                                "one row per step")
        found.append((name, values[mine], next(iter(classes))))
    longest = steps or max(len(v) for _, v, _ in found)
    too_long = [(name, len(v)) for name, v, _ in found if len(v) > longest]
    if too_long:
        raise PipelineError(f"{path}: series {too_long[0][0]!r} has {too_long[0][1]} steps, and the model reads at "
                            f"most {longest}: give series of at most that many steps")
    values = np.stack([_with_missing(v, longest) for _, v, _ in found])
    return values, [label for *_, label in found] if labelled else None, [name for name, *_ in found], numeric


def prepare_long(path: str, *, label_column: str | None, layout: dict, test_dataset: str | None, test_split: float,
                 ignore_columns=(), scaling: str = "each", padding: str = "last") -> Sequences:
    """The series of a long file at `path` (and of `test_dataset`), checked, padded to one length and split."""
    values, labels, _, numeric = read_long(path, layout=layout, label_column=label_column, ignored=ignore_columns)
    test = None
    if test_dataset:
        if not os.path.isfile(test_dataset):
            raise PipelineError(f"--test_dataset={test_dataset}: no such file")
        test_values, test_labels, _, _ = read_long(test_dataset, layout=layout, label_column=label_column,
                                                   numeric=numeric)
        if test_labels is None:
            raise PipelineError(f"--test_dataset={test_dataset} has no column {label_column!r}: a test file holds "
                                "its series' labels")
        values, test_values = _one_length(values, test_values)
        test = test_values, test_labels
    return _split(path, values, labels, test, test_dataset, test_split, padding, label_column=label_column,
                  scaling=scaling, columns=tuple(numeric), layout=dict(layout))


def examples(values: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices({"window": values, "label": labels})
